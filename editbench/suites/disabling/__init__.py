"""Disabling-edit isolation: are catastrophic edits intrinsic or accumulated (paper Sec. 3.4.1)?"""
