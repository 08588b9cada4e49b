#!/usr/bin/env python3
"""moec-serve end to end, against a running server (standard library only).

usage: serve_test.py BIN_DIR WORK_DIR [--browser] [--openai]
Compiles the default model (models/poems-v3) into WORK_DIR, starts moec-serve on a free
loopback port and checks:
  - /health, /v1/models, /metrics (Prometheus text);
  - /v1/completions and /v1/chat/completions, greedy, equal `moec-run --prompt` and
    `moec-run --chat --prompt` (the same tokens through the batched scheduler);
  - streaming (SSE): the chunks concatenate to the non-streamed text, end with a
    finish_reason, a usage chunk and "data: [DONE]";
  - logprobs equal log_softmax of the logits moec-run dumps for the same tokens;
  - 16 concurrent clients get what the same prompts get one at a time;
  - stop strings, n with a seed (the same seed, the same samples);
  - bad requests get HTTP 400 with an OpenAI-style error and the server keeps serving;
    a client that disconnects mid-stream frees its sequence;
  - a DeepSeek-R1-style template: the thinking comes back as reasoning_content;
  - a bounded load test (loopback): requests/s and p50/p99 latency, printed.
--browser: loads the chat page in headless chromium instead (DOM + screenshot).
--openai: drives the server with the official `openai` Python client instead (exits 77,
ctest's skip, when the package is not installed).
"""
import http.client
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = ["床前明月光，", "春眠不觉晓，", "白日依山尽，", "红豆生南国，", "千山鸟飞绝，",
           "国破山河在，", "独在异乡为异客，", "空山不见人，", "君自故乡来，", "移舟泊烟渚，",
           "向晚意不适，", "松下问童子，", "葡萄美酒夜光杯，", "朝辞白帝彩云间，",
           "明月几时有？", "大江东去，"]


class Failed(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failed(message)


class Server:
    def __init__(self, bin_dir, plan, work, *extra):
        port_file = os.path.join(work, "port.txt")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.log = open(os.path.join(work, "serve.log"), "a")
        self.proc = subprocess.Popen([os.path.join(bin_dir, "moec-serve"), plan, "--port", "0",
                                      "--port-file", port_file, "--threads", "2", *extra],
                                     stdout=self.log, stderr=self.log)
        end = time.time() + 30
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > end:
                raise Failed("moec-serve did not start: " + open(self.log.name).read())
            time.sleep(0.05)
        self.port = int(open(port_file).read())

    def request(self, method, path, body=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        payload = res.read()
        conn.close()
        return res.status, payload

    def json(self, path, body):
        status, payload = self.request("POST", path, body)
        check(status == 200, f"{path} answered {status}: {payload[:300]!r}")
        return json.loads(payload)

    def stream(self, path, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("POST", path, body=json.dumps(dict(body, stream=True)).encode(),
                     headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        check(res.status == 200, f"stream {path}: HTTP {res.status}")
        check(res.getheader("Content-Type", "").startswith("text/event-stream"), "not SSE")
        events = [e for e in res.read().decode().split("\n\n") if e.strip()]
        conn.close()
        check(events[-1] == "data: [DONE]", f"the stream ends with {events[-1]!r}")
        return [json.loads(e[len("data: "):]) for e in events[:-1]]

    def metric(self, name):
        status, text = self.request("GET", "/metrics")
        for line in text.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise Failed(f"/metrics has no {name}")

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        check(code == 0, f"moec-serve exited {code} on SIGTERM")


def thinking_server(bin_dir, plan, work):
    """A server that renders with DeepSeek-R1's template: its generation prompt opens
    <think>, so everything the default model writes is thinking."""
    with open(os.path.join(ROOT, "tests", "tokenizer", "expected-chat.json"), encoding="utf-8") as f:
        r1 = json.load(f)["templates"]["deepseek-r1"]
    template = os.path.join(work, "r1.jinja")
    with open(template, "w", encoding="utf-8") as f:
        f.write(r1)
    return Server(bin_dir, plan, work, "--chat-template", template)


def moec_run(bin_dir, *args):
    return subprocess.run([os.path.join(bin_dir, "moec-run"), *args], capture_output=True,
                          text=True, check=True).stdout


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    header_len = struct.unpack("<H", data[8:10])[0]
    header = eval(data[10:10 + header_len].decode())  # a literal dict written by moec-run
    rows, cols = header["shape"]
    values = struct.unpack(f"<{rows * cols}f", data[10 + header_len:])
    return [values[r * cols:(r + 1) * cols] for r in range(rows)]


def log_softmax_at(row, index):
    m = max(row)
    return row[index] - m - math.log(sum(math.exp(v - m) for v in row))


def test_api(bin_dir, plan, work):
    srv = Server(bin_dir, plan, work)
    try:
        status, body = srv.request("GET", "/health")
        check(status == 200 and json.loads(body)["status"] == "ok", "/health")
        models = json.loads(srv.request("GET", "/v1/models")[1])
        check(models["data"][0]["id"] == "poems.plan", f"/v1/models: {models}")

        # Greedy completions equal moec-run's.
        out = srv.json("/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 32,
                                           "temperature": 0})
        ref = moec_run(bin_dir, plan, "--prompt", PROMPTS[0], "--max-new-tokens", "32")[:-1]
        text = out["choices"][0]["text"]
        check(text == ref, f"completion {text!r} != moec-run {ref!r}")
        check(out["object"] == "text_completion" and out["usage"]["prompt_tokens"] == 6,
              f"completion fields: {out}")
        chat = srv.json("/v1/chat/completions", {"messages": [{"role": "user", "content": "春晓"}],
                                                 "max_tokens": 32, "temperature": 0})
        ref = moec_run(bin_dir, plan, "--chat", "--prompt", "春晓", "--max-new-tokens", "32")[:-1]
        message = chat["choices"][0]["message"]
        check(message["role"] == "assistant" and message["content"] == ref,
              f"chat {message} != moec-run {ref!r}")
        check("reasoning_content" not in message, "a model that does not think has no reasoning")

        # Streaming gives the same text.
        chunks = srv.stream("/v1/chat/completions", {"messages": [{"role": "user", "content": "春晓"}],
                                                     "max_tokens": 32, "temperature": 0})
        check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "first delta: role")
        streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks
                           if c["choices"])
        check(streamed == ref, f"streamed {streamed!r} != {ref!r}")
        check(any(c["choices"] and c["choices"][0]["finish_reason"] == "stop" for c in chunks),
              "no finish_reason in the stream")
        check(chunks[-1]["usage"]["completion_tokens"] == chat["usage"]["completion_tokens"],
              "stream usage")
        comp = srv.stream("/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 32,
                                              "temperature": 0})
        check("".join(c["choices"][0]["text"] for c in comp if c["choices"]) == text,
              "streamed completion differs")

        # Logprobs: log_softmax of the logits moec-run computes for the same tokens.
        lp = srv.json("/v1/completions", {"prompt": PROMPTS[1], "max_tokens": 12,
                                          "temperature": 0, "logprobs": 1})
        got = lp["choices"][0]["logprobs"]["token_logprobs"]
        prompt_ids = "0," + ",".join(moec_run(bin_dir, plan, "--tokenize", PROMPTS[1]).split())
        npy = os.path.join(work, "logits.npy")
        ids = moec_run(bin_dir, plan, "--tokens", prompt_ids, "--max-new-tokens", "12",
                       "--stop-token", "1", "--dump-decode-logits", npy).split()
        rows = read_npy(npy)
        t = len(prompt_ids.split(","))
        want = [log_softmax_at(rows[t - 1 + i], int(tok)) for i, tok in enumerate(ids)]
        check(len(got) == len(want), f"{len(got)} logprobs for {len(want)} tokens")
        worst = max(abs(a - b) for a, b in zip(got, want))
        check(worst < 1e-3, f"logprobs differ by {worst}: {got} vs {want}")

        # Top logprobs: the alternatives, most likely first; greedy picks the first.
        top = srv.json("/v1/chat/completions", {"messages": [{"role": "user", "content": "春晓"}],
                                                "max_tokens": 8, "temperature": 0,
                                                "logprobs": True, "top_logprobs": 3})
        for item in top["choices"][0]["logprobs"]["content"]:
            alts = item["top_logprobs"]
            check(len(alts) == 3 and alts[0]["token"] == item["token"] and
                  abs(alts[0]["logprob"] - item["logprob"]) < 1e-6 and
                  alts[0]["logprob"] >= alts[1]["logprob"] >= alts[2]["logprob"],
                  f"top_logprobs: {item}")
        comp_top = srv.json("/v1/completions", {"prompt": PROMPTS[1], "max_tokens": 4,
                                                "temperature": 0, "logprobs": 2})
        lp = comp_top["choices"][0]["logprobs"]
        check(len(lp["top_logprobs"]) == len(lp["tokens"]) and
              all(abs(max(d.values()) - v) < 1e-6 for d, v in zip(lp["top_logprobs"],
                                                                    lp["token_logprobs"])),
              f"completion top_logprobs: {lp}")

        # 16 concurrent clients = the same prompts one at a time.
        def ask(p):
            return srv.json("/v1/completions", {"prompt": p, "max_tokens": 24,
                                                "temperature": 0})["choices"][0]["text"]
        alone = [ask(p) for p in PROMPTS]
        together = [None] * len(PROMPTS)
        threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, ask(PROMPTS[i])))
                   for i in range(len(PROMPTS))]
        passes_before = srv.metric("moec_forward_passes_total")
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        passes = srv.metric("moec_forward_passes_total") - passes_before
        same = sum(a == b for a, b in zip(alone, together))
        check(same == len(PROMPTS), f"{len(PROMPTS) - same} of 16 concurrent replies differ: "
              f"{[(a, b) for a, b in zip(alone, together) if a != b][:2]}")
        check(passes < 16 * 24, f"16 concurrent requests took {passes} forward passes: not batched")

        # Stop strings and n with a seed.
        stopped = srv.json("/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 32,
                                               "temperature": 0, "stop": ["。"]})["choices"][0]
        check(stopped["finish_reason"] == "stop" and "。" not in stopped["text"] and
              text.startswith(stopped["text"]) and text[len(stopped["text"])] == "。",
              f"stop: {stopped}")
        body = {"prompt": PROMPTS[2], "max_tokens": 16, "temperature": 0.9, "seed": 7, "n": 3}
        a = [c["text"] for c in srv.json("/v1/completions", body)["choices"]]
        b = [c["text"] for c in srv.json("/v1/completions", body)["choices"]]
        check(len(a) == 3 and a == b, f"n=3 with a seed: {a} vs {b}")

        # Bad requests: 4xx with an error body; the server keeps serving.
        for path, raw, code in [("/v1/completions", b"{not json", 400),
                                ("/v1/completions", b'{"max_tokens": 4}', 400),
                                ("/v1/completions", b'{"prompt": "x", "temperature": -1}', 400),
                                ("/v1/completions", b'{"prompt": "x", "max_tokens": 99999}', 400),
                                ("/v1/chat/completions", b'{"messages": []}', 400),
                                ("/v1/chat/completions",
                                 b'{"messages": [{"role": "robot", "content": "x"}]}', 400),
                                ("/v1/nothing", b"{}", 404)]:
            status, payload = srv.request("POST", path, raw=raw)
            err = json.loads(payload).get("error", {})
            check(status == code and err.get("message"), f"{path} {raw!r}: {status} {payload!r}")
        check(srv.request("GET", "/health")[0] == 200, "the server stopped serving")

        # A client that goes away mid-stream frees its sequence.
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.request("POST", "/v1/completions", body=json.dumps(
            {"prompt": PROMPTS[3], "max_tokens": 1800, "temperature": 0.8, "stream": True}),
            headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        res.fp.readline()
        conn.sock.close()
        conn.close()
        end = time.time() + 10
        while srv.metric("moec_active_sequences") > 0:
            check(time.time() < end, "the disconnected client's sequence is still running")
            time.sleep(0.05)

        # A bounded load test on loopback.
        latencies, lock = [], threading.Lock()
        def worker(k):
            for j in range(8):
                t0 = time.time()
                ask(PROMPTS[(k * 8 + j) % len(PROMPTS)])
                with lock:
                    latencies.append(time.time() - t0)
        t0 = time.time()
        ws = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        wall = time.time() - t0
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        text = srv.request("GET", "/metrics")[1].decode()
        check("moec_requests_total{endpoint=\"/v1/completions\",code=\"200\"}" in text,
              "/metrics lacks the request counter")
        print(f"load: {len(latencies)} requests (8 clients, 24 tokens each) in {wall:.2f} s: "
              f"{len(latencies) / wall:.1f} requests/s, p50 {p50 * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms; generated {srv.metric('moec_generated_tokens_total'):.0f} "
              f"tokens, {srv.metric('moec_forward_passes_total'):.0f} forward passes")
    finally:
        srv.stop()

    # A thinking template: the reply's thinking is reasoning_content.
    srv = thinking_server(bin_dir, plan, work)
    try:
        body = {"messages": [{"role": "user", "content": "春晓"}], "max_tokens": 12,
                "temperature": 0}
        m = srv.json("/v1/chat/completions", body)["choices"][0]["message"]
        check(m.get("reasoning_content") and m["content"] == "", f"R1-style reply: {m}")
        chunks = srv.stream("/v1/chat/completions", body)
        streamed = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks
                           if c["choices"])
        check(streamed == m["reasoning_content"], "streamed reasoning_content differs")
    finally:
        srv.stop()
    print("ok: moec-serve API")


class Chromium:
    """Headless chromium driven over the DevTools protocol (--remote-debugging-pipe:
    JSON messages ending in a NUL byte on fds 3 and 4), so the test waits for the page's
    own "reply done" mark instead of guessing how long the stream takes."""

    def __init__(self, profile):
        import shutil
        if shutil.which("chromium") is None:
            print("SKIP: chromium not installed (scripts/setup.sh installs it)")
            sys.exit(77)
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            # Via numbers out of the way, so neither end overwrites the other; pipes are
            # close-on-exec, and dup2 onto the same number would keep that flag.
            high_r, high_w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)
        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "--window-size=900,700", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, timeout=60):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        end = time.time() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise Failed(f"chromium {method}: {reply['error']}")
                    return reply["result"]
            check(time.time() < end, f"chromium did not answer {method}")
            chunk = os.read(self.from_chrome, 1 << 20)
            check(chunk, "chromium closed the pipe")
            self.buffer += chunk

    def open(self, url):
        self.session = None
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", {"expression": expression,
                                              "returnByValue": True})["result"].get("value")

    def wait_for(self, expression, what, seconds=60):
        end = time.time() + seconds
        while time.time() < end:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise Failed(f"timed out waiting for {what}")

    def screenshot(self, path):
        import base64
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.session = None
            self.call("Browser.close", timeout=10)
        except Failed:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.to_chrome)
        os.close(self.from_chrome)


def test_browser(bin_dir, plan, work):
    import html
    import shutil
    profile = os.path.join(work, "chromium-profile")
    shutil.rmtree(profile, ignore_errors=True)
    browser = Chromium(profile)
    srv = Server(bin_dir, plan, work)
    try:
        want = srv.json("/v1/chat/completions", {"messages": [{"role": "user", "content": "春晓"}],
                                                 "max_tokens": 24, "temperature": 0})
        want = want["choices"][0]["message"]["content"]
        browser.open(f"http://127.0.0.1:{srv.port}/?q=%E6%98%A5%E6%99%93&temperature=0"
                     "&max_tokens=24")
        browser.wait_for("document.querySelector('.assistant[data-done]') !== null",
                         "the page's reply")
        dom = browser.evaluate("document.documentElement.outerHTML")
        check('class="msg user">春晓</div>' in dom, f"the page lacks the user's turn:\n{dom[-1500:]}")
        answer = browser.evaluate("document.querySelector('.assistant .answer').textContent")
        check(answer == want, f"the page shows {answer!r}, the API {want!r}")
        check(browser.evaluate("document.querySelector('.assistant').dataset.finish") == "stop",
              "the page saw no finish_reason")
        png = os.path.join(work, "chat.png")
        browser.screenshot(png)
        check(os.path.getsize(png) > 5000, "no screenshot")
    finally:
        srv.stop()
    # With a thinking template the thinking sits in a collapsible block above the
    # answer, folded once the reply ends.
    srv = thinking_server(bin_dir, plan, work)
    try:
        browser.open(f"http://127.0.0.1:{srv.port}/?q=%E6%98%A5%E6%99%93&temperature=0"
                     "&max_tokens=12")
        browser.wait_for("document.querySelector('.assistant[data-done]') !== null",
                         "the page's reply")
        state = browser.evaluate(
            "(() => { const d = document.querySelector('details.thinking');"
            " const t = d.querySelector('.thinking-text');"
            " return {hidden: d.hidden, open: d.open, text: t.textContent,"
            " above: !!(t.compareDocumentPosition(document.querySelector('.answer'))"
            " & Node.DOCUMENT_POSITION_FOLLOWING)}; })()")
        check(not state["hidden"] and state["text"].strip(), f"no thinking shown: {state}")
        check(state["above"], "the thinking is not above the answer")
        check(not state["open"], "the thinking block was not folded when the reply ended")
        browser.screenshot(os.path.join(work, "chat-thinking.png"))
    finally:
        srv.stop()
        browser.close()
    print(f"ok: the chat page streamed the reply ({len(want)} characters) and a thinking block; "
          f"screenshots {png}, chat-thinking.png")


def test_openai(bin_dir, plan, work):
    try:
        import openai
    except ImportError:
        print("SKIP: the openai Python package is not installed (pip install openai)")
        sys.exit(77)
    srv = Server(bin_dir, plan, work)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key="none")
        models = client.models.list()
        check(models.data[0].id == "poems.plan", "openai: models")
        r = client.chat.completions.create(model="poems.plan", max_tokens=24, temperature=0,
                                           messages=[{"role": "user", "content": "春晓"}])
        text = r.choices[0].message.content
        parts = []
        for chunk in client.chat.completions.create(model="poems.plan", max_tokens=24,
                                                    temperature=0, stream=True,
                                                    messages=[{"role": "user", "content": "春晓"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        check("".join(parts) == text and text, f"openai: stream {parts} vs {text!r}")
        c = client.completions.create(model="poems.plan", prompt=PROMPTS[0], max_tokens=8,
                                      temperature=0)
        check(c.choices[0].text and c.usage.completion_tokens >= 1, "openai: completions")
        try:
            client.completions.create(model="poems.plan", prompt="x", max_tokens=99999)
            raise Failed("openai: an over-long request was accepted")
        except openai.BadRequestError as e:
            check("context" in str(e), f"openai: {e}")
    finally:
        srv.stop()
    print(f"ok: openai {openai.__version__} client, chat, stream, completions, errors")


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    plan = os.path.join(work, "poems.plan")
    subprocess.run([os.path.join(bin_dir, "moec"), "compile",
                    os.path.join(ROOT, "models", "poems-v3"), "-o", plan, "--quiet"], check=True)
    try:
        if "--browser" in sys.argv:
            test_browser(bin_dir, plan, work)
        elif "--openai" in sys.argv:
            test_openai(bin_dir, plan, work)
        else:
            test_api(bin_dir, plan, work)
    except Failed as e:
        print(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
