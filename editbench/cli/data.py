"""``editbench data fetch [NAME ...] [--list]``: download data files from their original sources (offline machines)."""
from __future__ import annotations

import sys

from editbench.options import USAGE_ERROR


def add_parser(sub) -> None:
    da = sub.add_parser("data", help="data files: fetch them from their original sources")
    das = da.add_subparsers(dest="data_cmd", required=True)
    fe = das.add_parser("fetch", help="download data files into the cache (for offline machines); --list: sources",
                        description="Download each named data file (default: every one with a public source) from "
                                    "its original source into <cache>/data/ (sha256 checked where pinned), unless a "
                                    "local copy (EDITBENCH_DATA_DIR or ../shared/data, or the cache) has it; print "
                                    "where each file is and its sha256. Downloads even when EDITBENCH_OFFLINE or "
                                    "HF_HUB_OFFLINE is set (they only stop implicit downloads on first use).")
    fe.add_argument("names", nargs="*", metavar="NAME", help="datasets or task sets (see --list)")
    fe.add_argument("--list", action="store_true", help="show each source, its hash and whether it is here")
    fe.add_argument("--quiet", action="store_true", help="no progress bars")
    fe.set_defaults(func=run)


def run(args) -> int:
    """Pre-fetch data files from their original sources (default: every one with a public source); --list."""
    from editbench.data.download import DownloadError, sha256_file  # lazy: cli.common.LAZY
    from editbench.data.sources import SOURCES, DataNotAvailable, UnknownSourceError, local_copy, obtain
    if args.list:
        for s in SOURCES.values():
            here = local_copy(s)
            pin = f"sha256 {s.sha256} (pinned)" if s.sha256 else "sha256 not pinned (trust on first use, warned)"
            print(f"{s.name:<16} {'present: ' + str(here) if here else 'absent'}")
            print(f"    {s.origin}; {pin}")
            for url in s.urls:
                print(f"    from {url}")
            if not s.public:
                print(f"    no public source of the balanced set; {s.fallback}")
        return 0
    for name in args.names:
        if name not in SOURCES:
            print(f"editbench data fetch: error: {UnknownSourceError(name)}", file=sys.stderr)
            return USAGE_ERROR
    failed = 0
    for name in args.names or [n for n, s in SOURCES.items() if s.public]:
        try:
            path = obtain(name, download=True, progress=not args.quiet)
        except (DataNotAvailable, DownloadError, OSError, ValueError) as e:
            print(f"{name}: not fetched: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name:<16} {path}  sha256 {sha256_file(path)}")
    return 1 if failed else 0
