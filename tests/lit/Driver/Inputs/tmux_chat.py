"""Drives `moec-run --chat` in a terminal, as a person would, through tmux.

usage: tmux_chat.py MOEC_RUN PLAN TEMPLATE WORKDIR
Starts moec-run --chat in a detached tmux session (its own server socket under
WORKDIR), types a turn with send-keys, waits for the reply, and reads the screen
with capture-pane -e (escape sequences kept). With DeepSeek-R1's template the reply
is thinking: on a terminal it must appear dimmed (SGR 2) under a bold "thinking"
header, after the "> " prompt and the typed text; /exit must end the program.
Prints the screen as plain text, then "ok".
"""
import os
import re
import subprocess
import sys
import time

run, plan, template, workdir = sys.argv[1:5]
sock = os.path.join(workdir, "tmux.sock")


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                          check=check).stdout


def screen(escapes=False):
    return tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "chat")


def wait_for(predicate, what, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        text = screen()
        if predicate(text):
            return text
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}; screen:\n{screen()}")


command = (f"{run} {plan} --chat --chat-template {template} --max-new-tokens 12 "
           "--temperature 0; echo EXITED; sleep 30")
tmux("new-session", "-d", "-s", "chat", "-x", "100", "-y", "20",
     "env", "LANG=C.UTF-8", "sh", "-c", command)
try:
    wait_for(lambda s: s.rstrip().endswith(">"), "the first prompt")
    tmux("send-keys", "-t", "chat", "春晓", "Enter")
    wait_for(lambda s: s.count(">") >= 2, "the reply and the next prompt")
    plain, colored = screen(), screen(escapes=True)
    assert "> 春晓" in plain, plain
    assert "thinking" in plain, plain
    # tmux re-encodes the attributes it shows: the header is bold and dim (SGR 1, 2),
    # the text under it dim (SGR 2).
    header = re.search(r"\x1b\[([0-9;]*)mthinking\n\x1b\[([0-9;]*)m", colored)
    assert header, repr(colored)
    assert {"1", "2"} <= set(header.group(1).split(";")), repr(colored)
    assert "2" in header.group(2).split(";"), repr(colored)
    tmux("send-keys", "-t", "chat", "/exit", "Enter")
    wait_for(lambda s: "EXITED" in s, "moec-run to exit")
    print(plain.rstrip())
    print("ok")
finally:
    tmux("kill-server", check=False)
