"""The run's clock (tests/clock.py) is one clock: a process the run starts reads the same
instant as the test process, however long it waits before its first read. (time-machine
starts ticking at a process's first read: a live server that read it first seconds after
start-up lagged the run by those seconds, and tokens the tests signed were refused as issued
in the future.)"""

import os
import subprocess
import sys
import time

CHILD = """
import time
time.sleep(4)  # what a server importing Django on a busy machine spends before reading the clock
print(time.time())
"""


def test_a_child_process_that_reads_the_clock_late_agrees_with_the_run():
    assert os.environ.get("CLINIC_TEST_CLOCK"), "the run's clock is set for its children"
    before = time.time()
    child = subprocess.run(
        [sys.executable, "-c", CHILD], env=os.environ, capture_output=True, text=True, check=True
    )
    after = time.time()
    seen = float(child.stdout)
    # the child read its clock just before it ended (a tolerance for its exit), not seconds
    # behind the run
    assert before < seen <= after + 0.5, (before, seen, after)
    assert after - seen < 1.5, f"the child lagged the run by {after - seen:.2f} s"
