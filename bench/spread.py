"""min / median / max of several runs, as every bench table prints them."""
import statistics


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
