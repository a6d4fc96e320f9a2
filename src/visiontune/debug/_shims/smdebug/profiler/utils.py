def str2bool(v):
    """argparse's type for "true"/"false" flags, as smdebug.profiler.utils has it."""
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("yes", "true", "t", "y", "1"):
        return True
    if str(v).lower() in ("no", "false", "f", "n", "0"):
        return False
    import argparse

    raise argparse.ArgumentTypeError(f"boolean value expected, not {v!r}")
