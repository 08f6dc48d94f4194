"""Runs demo.run in its own interpreter, as `python app.py demo` does, and prints a JSON summary.

The demo starts speech recognizers, synthesizers, the simulator and the app in one process; a
separate interpreter keeps the test suite's own process out of it, and the other way round.
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import demo  # noqa: E402


def main() -> None:
    workdir, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
    kwargs = {"caller_lines": [], "interrupt": (2.5, "Yes, I will be there.")} if mode == "barge-in" else {}
    with open(workdir / "printed.txt", "w") as out:
        result = demo.run(workdir, out=out, timeout_s=90, **kwargs)
    call = result["call"]
    print(json.dumps({"status": call.status, "hangup_cause": call.hangup_cause, "transcript": call.transcript,
                      "events": result["events"], "heard_bytes": len(result["heard"]),
                      "caller_heard": result["caller_heard"], "problems": demo.conversation_problems(result),
                      "tool_calls": result["tool_calls"]}))


if __name__ == "__main__":
    main()
