#!/usr/bin/env python3
"""Checks a kosoku (Autobahn test-suite) report of the autobahn_echo example.

Usage: .ci/autobahn_check.py target/autobahn-report/index.json

Passes only if every case is OK, NON-STRICT or INFORMATIONAL (both `behavior` and
`behaviorClose`), except the cases listed in OVERSIZE_CASES: they send a message larger than the
transport's maximum message size, and the server must close them with 1009 (message too big).
Prints a summary and exits non-zero on any unexpected result.
"""

import collections
import json
import sys

# `Limits::default().max_message_size` in crates/transport/src/limits.rs (96 KiB).
MAX_MESSAGE_SIZE = 96 * 1024

# Cases whose message is larger than MAX_MESSAGE_SIZE, with the message size in bytes (from
# kosoku 0.1.0's kosoku/cases/*.py). All other 9.x cases send at most 64 KiB: 9.1.1 and 9.2.1
# (65536) and 9.7.x / 9.8.x (0 to 4096 bytes, 1000 times each).
OVERSIZE_CASES = {
    # 9.1.x: one text frame.
    "9.1.2": 256 * 2**10,  # 262144
    "9.1.3": 1 * 2**20,  # 1048576
    "9.1.4": 4 * 2**20,  # 4194304
    "9.1.5": 8 * 2**20,  # 8388608
    "9.1.6": 16 * 2**20,  # 16777216
    # 9.2.x: one binary frame.
    "9.2.2": 256 * 2**10,  # 262144
    "9.2.3": 1 * 2**20,  # 1048576
    "9.2.4": 4 * 2**20,  # 4194304
    "9.2.5": 8 * 2**20,  # 8388608
    "9.2.6": 16 * 2**20,  # 16777216
    # 9.3.x: a 4 MiB text message in fragments of 64 B, 256 B, 1 KiB, 4 KiB, 16 KiB, 64 KiB,
    # 256 KiB, 1 MiB and 4 MiB.
    "9.3.1": 4 * 2**20,  # 4194304
    "9.3.2": 4 * 2**20,  # 4194304
    "9.3.3": 4 * 2**20,  # 4194304
    "9.3.4": 4 * 2**20,  # 4194304
    "9.3.5": 4 * 2**20,  # 4194304
    "9.3.6": 4 * 2**20,  # 4194304
    "9.3.7": 4 * 2**20,  # 4194304
    "9.3.8": 4 * 2**20,  # 4194304
    "9.3.9": 4 * 2**20,  # 4194304
    # 9.4.x: a 4 MiB binary message in the same fragment sizes.
    "9.4.1": 4 * 2**20,  # 4194304
    "9.4.2": 4 * 2**20,  # 4194304
    "9.4.3": 4 * 2**20,  # 4194304
    "9.4.4": 4 * 2**20,  # 4194304
    "9.4.5": 4 * 2**20,  # 4194304
    "9.4.6": 4 * 2**20,  # 4194304
    "9.4.7": 4 * 2**20,  # 4194304
    "9.4.8": 4 * 2**20,  # 4194304
    "9.4.9": 4 * 2**20,  # 4194304
    # 9.5.x: one 1 MiB text frame written in chops of 64 to 2048 bytes.
    "9.5.1": 1 * 2**20,  # 1048576
    "9.5.2": 1 * 2**20,  # 1048576
    "9.5.3": 1 * 2**20,  # 1048576
    "9.5.4": 1 * 2**20,  # 1048576
    "9.5.5": 1 * 2**20,  # 1048576
    "9.5.6": 1 * 2**20,  # 1048576
    # 9.6.x: one 1 MiB binary frame written in chops of 64 to 2048 bytes.
    "9.6.1": 1 * 2**20,  # 1048576
    "9.6.2": 1 * 2**20,  # 1048576
    "9.6.3": 1 * 2**20,  # 1048576
    "9.6.4": 1 * 2**20,  # 1048576
    "9.6.5": 1 * 2**20,  # 1048576
    "9.6.6": 1 * 2**20,  # 1048576
    # 7.1.6: a 256 KiB text frame, then a text message, a close and a ping back to back
    # (INFORMATIONAL by design).
    "7.1.6": 256 * 2**10,  # 262144
}

PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
MESSAGE_TOO_BIG = 1009


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} INDEX_JSON", file=sys.stderr)
        return 2
    assert all(size > MAX_MESSAGE_SIZE for size in OVERSIZE_CASES.values())
    try:
        with open(argv[1], encoding="utf-8") as file:
            index = json.load(file)
    except (OSError, ValueError) as error:
        print(f"autobahn: cannot read the report {argv[1]}: {error}", file=sys.stderr)
        return 1
    if not isinstance(index, dict) or not index:
        print(f"autobahn: {argv[1]} holds no agent", file=sys.stderr)
        return 1

    problems = []
    for agent, cases in index.items():
        behaviors = collections.Counter(case["behavior"] for case in cases.values())
        closes = collections.Counter(case["behaviorClose"] for case in cases.values())
        print(f"## {agent}: {len(cases)} cases\n")
        print("| result | behavior | behaviorClose |")
        print("|---|---|---|")
        for name in sorted(set(behaviors) | set(closes)):
            print(f"| {name} | {behaviors[name]} | {closes[name]} |")
        print()

        notable = []
        for case_id in sorted(cases, key=case_key):
            case = cases[case_id]
            if case_id in OVERSIZE_CASES:
                continue
            behavior, close = case["behavior"], case["behaviorClose"]
            if behavior not in PASSING or close not in PASSING:
                problems.append(
                    f"{agent} {case_id}: {behavior}/{close}, close code {case.get('remoteCloseCode')}"
                )
            elif behavior != "OK" or close != "OK":
                notable.append((case_id, case))
        if notable:
            print("NON-STRICT / INFORMATIONAL cases:\n")
            print("| case | behavior | behaviorClose | close code |")
            print("|---|---|---|---|")
            for case_id, case in notable:
                print(
                    f"| {case_id} | {case['behavior']} | {case['behaviorClose']} "
                    f"| {case.get('remoteCloseCode')} |"
                )
            print()

        print(f"Cases over the {MAX_MESSAGE_SIZE}-byte message limit (expected close 1009):\n")
        print("| case | message bytes | behavior | behaviorClose | close code | as expected |")
        print("|---|---|---|---|---|---|")
        expected_ok = 0
        for case_id in sorted(OVERSIZE_CASES, key=case_key):
            case = cases.get(case_id)
            if case is None:
                print(f"| {case_id} | {OVERSIZE_CASES[case_id]} | - | - | - | MISSING |")
                problems.append(f"{agent} {case_id}: missing from the report")
                continue
            code = case.get("remoteCloseCode")
            good = code == MESSAGE_TOO_BIG
            expected_ok += good
            print(
                f"| {case_id} | {OVERSIZE_CASES[case_id]} | {case['behavior']} "
                f"| {case['behaviorClose']} | {code} | {'yes' if good else 'NO'} |"
            )
            if not good:
                problems.append(
                    f"{agent} {case_id}: {OVERSIZE_CASES[case_id]}-byte message closed with "
                    f"{code}, expected {MESSAGE_TOO_BIG}"
                )
        print(f"\n{expected_ok}/{len(OVERSIZE_CASES)} oversize cases closed with 1009.\n")

    if problems:
        print(f"autobahn: FAILED, {len(problems)} unexpected result(s):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("autobahn: passed (all other cases OK, NON-STRICT or INFORMATIONAL)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
