"""Report how long each tutorial notebook took (and its kernel's peak memory) at the end of the run."""


def pytest_terminal_summary(terminalreporter):
    rows = []
    for rep in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        props = dict(getattr(rep, "user_properties", []) or [])
        if rep.when == "call" and "notebook_seconds" in props:
            rows.append((props["notebook"], props["notebook_seconds"], props.get("kernel_peak_mib"), rep.outcome))
    if not rows:
        return
    tr = terminalreporter
    tr.section("tutorial notebooks")
    for name, sec, mib, outcome in sorted(rows):
        mem = f"{mib:7.0f} MiB" if mib else "        -"
        tr.write_line(f"{name:32s} {sec:7.1f} s  {mem}  {outcome}")
    tr.write_line(f"{'total':32s} {sum(r[1] for r in rows):7.1f} s")
