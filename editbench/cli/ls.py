"""``editbench ls``: editors and probes (built-in + plugins, with import errors), models, datasets, task sets."""
from __future__ import annotations


def add_parser(sub) -> None:
    s = sub.add_parser("ls", help="list editors, built-in models and datasets")
    s.set_defaults(func=run)


def _presets_line(cls, editor_preset_table) -> str:
    """``"smollm2-135m, factworld (built-in); tiny-gpt2 (built-in rome)"``: model keys grouped by source."""
    from editbench.editors.presets import DERIVED_FIELDS, section_provenance  # lazy: cli.common.LAZY
    try:
        table, sources = editor_preset_table(cls)
    except Exception as e:  # noqa: BLE001 - a broken preset file is reported, not fatal here
        return f"(presets unreadable: {e})"
    groups: dict[str, list[str]] = {}
    for key in table:
        if key != "default":
            source = sources.get(key, "?")
            if source == "built-in":  # published / derived (by causal tracing) / shipped (editbench's own)
                source = f"built-in, {section_provenance(cls.name, key)['kind']}"
            groups.setdefault(source, []).append(key)
    derive = "; any other model: derived by causal trace at first use" if cls.name in DERIVED_FIELDS and \
        all(s == "built-in" for s in sources.values()) else ""
    if not groups:
        return "defaults only" + (f" ({sources['default']})" if "default" in sources else " (class defaults)")
    parts = []
    for source, keys in groups.items():
        shown = ", ".join(keys[:8]) + (f", … {len(keys) - 8} more" if len(keys) > 8 else "")
        parts.append(f"{shown} ({source})")
    return "; ".join(parts) + derive


def run(args) -> int:
    from importlib.metadata import packages_distributions, version  # lazy: cli.common.LAZY
    from editbench import registry
    from editbench.data import list_datasets
    from editbench.data.tasks import list_tasksets
    from editbench.editors.base import editor_preset_table
    from editbench.models.loader import describe_builtins
    classes, errors = registry.load_all()
    dists = packages_distributions()
    print("editors (name, batch support, package that provides it, per-model presets shipped and their source):")
    for name in registry.available():
        if name in classes:
            cls = classes[name]
            top = cls.__module__.split(".")[0]
            dist = (dists.get(top) or [top])[0]
            try:
                dist = f"{dist} {version(dist)}"
            except Exception:  # noqa: BLE001 - a module outside any installed distribution
                pass
            print(f"  {name:<12} batch={'yes' if cls.supports_batch else 'no ':<3}  {dist:<22} {cls.__module__}")
            print(f"  {'':<12} presets: {_presets_line(cls, editor_preset_table)}")
        else:
            print(f"  {name:<12} FAILED TO LOAD: {errors.get(name)}")
    print("models (built-in; also any local HF directory or hub id):")
    for name, what in describe_builtins().items():
        print(f"  {name:<13} {what}")
    probes, probe_errors = registry.PROBES.load_all()
    print("probes (sequential runs' health checks; metric: which direction is better):")
    for name in registry.PROBES.available():
        if name in probes:
            print(f"  {name:<21} " + ", ".join(f"{k}: {d}" for k, d in probes[name].metrics.items()))
        else:
            print(f"  {name:<21} FAILED TO LOAD: {probe_errors.get(name)}")
    print("datasets:", ", ".join(list_datasets()))
    print("task sets (downstream probes):", ", ".join(list_tasksets()))
    return 0
