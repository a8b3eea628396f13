#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A second SIGTERM during the clean-up of the first (systemd's and an operator's) is ignored."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402


def main(t):
    # The second signal at delays that land in the workers' stop, the control loop's
    # close and the clean-up after it: before the fix most of these ended with -15.
    codes = []
    for i in range(10):
        srv = g.Gslbd(identity=False).start()
        srv.signal(signal.SIGTERM)
        time.sleep(0.002 * i)
        codes.append(srv.stop())  # SIGTERM again, then waits
        if codes[-1] != 0:
            srv.dump(t, 'gslbd killed by a second SIGTERM')
        srv.cleanup()
    t.eq(codes, [0] * 10, 'two SIGTERMs in a row: exit 0 every time (not killed by the second)')


if __name__ == '__main__':
    g.run(main)
