"""How long `tfl --help` takes to start (the CLI must not import TensorFlow for it).

    python bench/startup.py [--repeats 7] [--out DIR]

Times `python -m tfl --help` in a fresh process, after one warm-up run (which fills the OS
file cache), and also `python -c "import tensorflow"` for scale. Writes `startup.json` into the
output folder (see `common.py`).
"""

import argparse
import subprocess
import sys
import time

from common import REPO, add_out_argument, print_table, summarize, write_result


def seconds(command, repeats):
    subprocess.run(command, cwd=REPO, capture_output=True, check=True)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return summarize(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    add_out_argument(parser)
    args = parser.parse_args()
    results = {
        "tfl --help": seconds([sys.executable, "-m", "tfl", "--help"], args.repeats),
        "import tensorflow": seconds([sys.executable, "-c", "import tensorflow"],
                                     max(3, args.repeats // 2)),
    }
    path = write_result(args.out, "startup", {"benchmark": "startup", "results": results})
    print_table(["command", "seconds (median)", "min", "max"],
                [[name, f"{r['median']:.2f}", f"{r['min']:.2f}", f"{r['max']:.2f}"]
                 for name, r in results.items()])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
