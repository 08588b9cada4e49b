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
    with open(os.path.join(ROOT, "tests", "tokenizer", "expected-chat.json"), encoding="utf-8") as f:
        r1 = json.load(f)["templates"]["deepseek-r1"]
    template = os.path.join(work, "r1.jinja")
    with open(template, "w", encoding="utf-8") as f:
        f.write(r1)
    srv = Server(bin_dir, plan, work, "--chat-template", template)
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


def test_browser(bin_dir, plan, work):
    import shutil
    if shutil.which("chromium") is None:
        print("SKIP: chromium not installed (scripts/setup.sh installs it)")
        sys.exit(77)
    srv = Server(bin_dir, plan, work)
    try:
        want = srv.json("/v1/chat/completions", {"messages": [{"role": "user", "content": "春晓"}],
                                                 "max_tokens": 24, "temperature": 0})
        want = want["choices"][0]["message"]["content"]
        url = f"http://127.0.0.1:{srv.port}/?q=%E6%98%A5%E6%99%93&temperature=0&max_tokens=24"
        profile = os.path.join(work, "chromium-profile")
        base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=20000"]
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120).stdout
        check('class="msg user">春晓</div>' in dom, f"the page lacks the user's turn:\n{dom[-1500:]}")
        check('data-done="true"' in dom, f"the reply did not finish:\n{dom[-1500:]}")
        answer = dom.split('<div class="answer">', 1)[1].split("</div>", 1)[0]
        import html
        check(html.unescape(answer) == want, f"the page shows {answer!r}, the API {want!r}")
        png = os.path.join(work, "chat.png")
        subprocess.run(base + [f"--screenshot={png}", "--window-size=900,700", url],
                       capture_output=True, timeout=120)
        check(os.path.exists(png) and os.path.getsize(png) > 5000, "no screenshot")
    finally:
        srv.stop()
    # With a thinking template the thinking sits in a collapsible block above the
    # answer (folded once the reply ends).
    with open(os.path.join(ROOT, "tests", "tokenizer", "expected-chat.json"), encoding="utf-8") as f:
        r1 = json.load(f)["templates"]["deepseek-r1"]
    template = os.path.join(work, "r1.jinja")
    with open(template, "w", encoding="utf-8") as f:
        f.write(r1)
    srv = Server(bin_dir, plan, work, "--chat-template", template)
    try:
        url = f"http://127.0.0.1:{srv.port}/?q=%E6%98%A5%E6%99%93&temperature=0&max_tokens=12"
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120).stdout
        block = dom.split('<details class="thinking"', 1)
        check(len(block) == 2, f"no thinking block:\n{dom[-1500:]}")
        check(block[1].split(">", 1)[0].find("hidden") < 0, "the thinking block is hidden")
        thought = block[1].split('<div class="thinking-text">', 1)[1].split("</div>", 1)[0]
        check(thought.strip(), "the thinking block is empty")
        check(block[1].index("thinking-text") < block[1].index('class="answer"'),
              "the thinking is not above the answer")
        subprocess.run(base + [f"--screenshot={os.path.join(work, 'chat-thinking.png')}",
                               "--window-size=900,700", url], capture_output=True, timeout=120)
    finally:
        srv.stop()
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
