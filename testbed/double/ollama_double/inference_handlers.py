"""The inference endpoints: /api/generate, /api/chat and /api/embed.

A mixin of server.Handler.  A request loads its model through the scheduler,
then the double "generates" textgen's canned reply at the configured
tokens_per_s, with Ollama's fields, done reasons and durations.  Model lookup
(``find_model``) comes from model_handlers.ModelHandlers.
"""

from __future__ import annotations

import time

from ollama_deploy.gocompat import gguf

from . import gorules, slog, textgen
from .gofmt import go_q
from .llama_server import LoadError
from .options import OptionError
from .scheduler import Busy

DOUBLE_NUM_PREDICT = 24  # the double's stand-in for "until EOS": replies are short


def _now() -> str:
    return slog.rfc3339_nano()


class InferenceHandlers:
    """Inference endpoints of server.Handler."""

    def generate(self, req: dict) -> None:
        self._infer(req, chat=False)

    def chat(self, req: dict) -> None:
        self._infer(req, chat=True)

    def _infer(self, req: dict, chat: bool) -> None:
        a = self.app
        t_start = time.monotonic_ns()
        try:
            keep_alive = gorules.parse_request_keep_alive(req.get("keep_alive"))
        except ValueError as e:
            return self.json(400, {"error": str(e)})
        raw = req.get("model") or ""
        if not raw:
            return self.json(400, {"error": "model is required"})
        model = self.find_model(raw)
        if model is None:
            return self.json(404, {"error": f"model '{raw}' not found"})
        if chat:
            msgs = req.get("messages") or []
            prompt = next((m.get("content", "") for m in reversed(msgs) if m.get("role") == "user"), "")
            system = next((m.get("content", "") for m in msgs if m.get("role") == "system"), model.system)
            empty = not msgs
        else:
            prompt = req.get("prompt") or ""
            system = req.get("system") or model.system
            empty = prompt == ""
        base = {"model": raw}
        if empty and keep_alive == 0:
            a.sched.expire_model(model)
            return self._reply(req, chat, base, "unload")
        # GenerateHandler / ChatHandler: a thinking model thinks unless the request says think=false;
        # asking another model to think, or an embedding model to generate, is a 400.
        caps, think = model.capabilities(), req.get("think")
        if "thinking" not in caps and think not in (None, False, ""):
            return self.json(400, {"error": f"{go_q(raw)} does not support thinking"})
        if "completion" not in caps:
            return self.json(400, {"error": f"{go_q(raw)} does not support {'chat' if chat else 'generate'}"})
        thinking = "thinking" in caps and think is not False
        try:
            opts, _ctx_auto, batch_auto = a.sched.options(model, req.get("options"))
            runner, _ = a.sched.acquire(model, opts, batch_auto, keep_alive)
            # load_duration = checkpointLoaded - checkpointStart: also non-zero for a loaded model
            load_ns = time.monotonic_ns() - t_start
        except OptionError as e:
            return self.json(500, {"error": str(e)})
        except Busy as e:
            return self.json(503, {"error": str(e)})
        except LoadError as e:
            return self.json(500, {"error": str(e)})
        try:
            if empty:
                return self._reply(req, chat, base, "load")
            self._run(req, chat, base, runner, opts, (prompt, system, thinking), load_ns, t_start)
        finally:
            a.sched.release(runner)

    def embed(self, req: dict) -> None:
        """EmbedHandler: any model loads (no capability is required); no input only loads it."""
        a = self.app
        t_start = time.monotonic_ns()
        raw, given = req.get("model") or "", req.get("input")
        texts = [given] if isinstance(given, str) and given else given if isinstance(given, list) else []
        if (given is not None and not isinstance(given, (str, list))) or not all(isinstance(t, str) for t in texts):
            return self.json(400, {"error": "invalid input type"})
        model = self.find_model(raw)
        if model is None:
            return self.json(404, {"error": f"model '{raw}' not found"})
        try:
            keep_alive = gorules.parse_request_keep_alive(req.get("keep_alive"))
            opts, _ctx_auto, batch_auto = a.sched.options(model, req.get("options"))
            runner, _ = a.sched.acquire(model, opts, batch_auto, keep_alive)
        except ValueError as e:
            return self.json(400, {"error": str(e)})
        except (OptionError, LoadError) as e:
            return self.json(500, {"error": str(e)})
        except Busy as e:
            return self.json(503, {"error": str(e)})
        load_ns = time.monotonic_ns() - t_start
        try:
            if not texts:
                return self.json(200, {"model": raw, "embeddings": []})
            width = gguf.arch_uint(model.kv(), "embedding_length") or 8
            self.json(200, {"model": raw, "embeddings": [textgen.embedding(t, width) for t in texts],
                            "total_duration": time.monotonic_ns() - t_start, "load_duration": load_ns,
                            "prompt_eval_count": sum(textgen.count_tokens(t) for t in texts)})
        finally:
            a.sched.release(runner)

    def _reply(self, req, chat, base, reason) -> None:
        obj = {**base, "created_at": _now()}
        if chat:
            obj["message"] = {"role": "assistant", "content": ""}
        else:
            obj["response"] = ""
        obj.update({"done": True, "done_reason": reason})
        if req.get("stream") is False:
            self.json(200, obj)
        else:
            self.chunk(obj)
            self.end_stream()

    def _run(self, req, chat, base, runner, opts, text_in, load_ns, t_start) -> None:
        """Stream the reply; with ``thinking`` every token goes to the thinking field (the prompt
        ends in the opening tag and the double never writes the closing one)."""
        prompt, system, thinking = text_in
        field = "thinking" if thinking else ("content" if chat else "response")
        cfg = self.app.cfg["tokens_per_s"]
        rate = float(cfg["gpu"] if runner.fully_on_gpu else cfg["cpu"]) or 1.0
        tokens = textgen.reply_tokens(prompt)
        limit = opts["num_predict"] if opts["num_predict"] >= 0 else DOUBLE_NUM_PREDICT
        reason = "stop"
        if len(tokens) > limit:
            tokens, reason = tokens[:limit], "length"
        stops = [s for s in opts.get("stop") or [] if s]
        n_prompt = textgen.count_tokens(system + " " + prompt) + (8 if runner.model.has_template else 0)
        p_ns = int(n_prompt / (rate * 20) * 1e9)
        time.sleep(p_ns / 1e9)
        stream = req.get("stream") is not False
        out, text = [], ""
        t_eval = time.monotonic_ns()
        for tok in tokens:
            time.sleep(1.0 / rate)
            hit = next((s for s in stops if s in text + tok), None)
            if hit is not None:
                tok = (text + tok)[: (text + tok).index(hit)][len(text):]
                reason = "stop"
            out.append(tok)
            text += tok
            if stream and tok:
                self.chunk(_message(base, chat, {field: tok}) | {"done": False})
            if hit is not None:
                break
        eval_ns = time.monotonic_ns() - t_eval
        final = _message(base, chat, {} if stream else {field: text})
        final["done"] = True
        final["done_reason"] = reason
        if not chat and not req.get("raw"):  # tokens of prompt + reply (a deprecated field, still sent)
            final["context"] = textgen.token_ids(system + " " + prompt + " " + text)
        final.update({"total_duration": time.monotonic_ns() - t_start, "load_duration": load_ns})
        final.update({"prompt_eval_count": n_prompt, "prompt_eval_duration": p_ns, "eval_count": len(out),
                      "eval_duration": eval_ns})
        if stream:
            self.chunk(final)
            self.end_stream()
        else:
            self.json(200, final)


def _message(base: dict, chat: bool, text: dict) -> dict:
    """A generate or chat reply object up to "done": api.GenerateResponse puts response (always) then
    thinking (omitempty); api.Message content (always) then thinking (omitempty)."""
    obj = {**base, "created_at": _now()}
    body = {"content" if chat else "response": text.get("content", text.get("response", ""))}
    if text.get("thinking"):
        body["thinking"] = text["thinking"]
    if chat:
        obj["message"] = {"role": "assistant", **body}
    else:
        obj.update(body)
    return obj
