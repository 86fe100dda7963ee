# The Python peer of coreproc-bench (section "peers"): subprocess.run of the bench's no-op and
# writer children. Usage: peer.py NOOP WRITER N. Runs N iterations of each of its two loops after
# 3 warm-up calls and prints one line per sample: "plain <us>" or "capture <us>".
import subprocess, sys, time
noop, writer, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def bench(key, fn):
    for _ in range(3):
        fn()
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        print(key, (time.perf_counter_ns() - t) / 1000)
def capture():
    out = subprocess.run([writer, "16"], capture_output=True, check=True).stdout
    assert len(out) == 16
bench("plain", lambda: subprocess.run([noop], check=True))
bench("capture", capture)
sys.stdout.flush()
