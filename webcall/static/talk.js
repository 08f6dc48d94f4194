// Talk to a VoxBridge agent from the browser: microphone -> 16 kHz PCM over a WebSocket -> the voice pipeline;
// the agent's voice comes back as PCM and plays through a small jitter buffer. Protocol: webcall/server.py.
//
//   const call = new VoxBridgeTalk.TalkCall(websocketUrl, {workletUrl, onEvent(message) {...}, onClose(info) {...}});
//   await call.start();  ...  call.hangUp();
//
// The page (talk.html) wires it to its buttons; the console embeds the same class behind its own button.
(function () {
  "use strict";

  const RATE = 16000; // what the page sends and the agent's voice comes back at
  const FRAME_SAMPLES = 320; // 20 ms
  const JITTER_S = 0.12; // audio is held this long before it plays, so late packets do not make gaps

  // Why the server closed the socket (webcall/tokens.py CLOSE_*), in words for the person at the page.
  const CLOSE_REASONS = {
    1000: "The call ended.",
    1001: "The server went away.",
    1006: "The connection dropped.",
    4400: "The link is incomplete (no token).",
    4401: "The token is not valid for this call.",
    4403: "This page's address is not allowed to open calls (WEB_CALL_ALLOWED_ORIGINS).",
    4404: "The call no longer exists or has ended.",
    4408: "The token expired before the call started. Start a new call.",
    4409: "This token was already used. Start a new call.",
    4503: "The server could not look the call up. Try again.",
  };

  // Plays 16-bit PCM chunks back to back; a chunk arriving after the queue ran dry starts JITTER_S ahead.
  class Player {
    constructor(context) {
      this.context = context;
      this.next = 0;
      this.sources = new Set();
    }

    play(buffer) {
      const samples = new Int16Array(buffer);
      if (samples.length === 0) return;
      const floats = new Float32Array(samples.length);
      for (let i = 0; i < samples.length; i++) floats[i] = samples[i] / 0x8000;
      const audio = this.context.createBuffer(1, samples.length, RATE); // resampled to the device by the browser
      audio.copyToChannel(floats, 0);
      const source = this.context.createBufferSource();
      source.buffer = audio;
      source.connect(this.context.destination);
      const now = this.context.currentTime;
      if (this.next < now + 0.01) this.next = now + JITTER_S;
      source.start(this.next);
      this.next += audio.duration;
      this.sources.add(source);
      source.onended = () => this.sources.delete(source);
    }

    // Barge-in: what was received but not yet heard is dropped at once.
    clear() {
      for (const source of this.sources) {
        try { source.stop(); } catch (e) { /* already stopped */ }
      }
      this.sources.clear();
      this.next = 0;
    }

    get playing() {
      return this.sources.size > 0;
    }
  }

  class TalkCall {
    constructor(url, options) {
      this.url = url;
      this.options = options || {};
      this.onEvent = this.options.onEvent || function () {};
      this.onClose = this.options.onClose || function () {};
      this.socket = null;
      this.context = null;
      this.microphone = null;
      this.player = null;
      this.ended = false;
    }

    async start() {
      this.context = new AudioContext();
      await this.context.resume();
      this.microphone = await navigator.mediaDevices.getUserMedia({audio: {
        channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true}});
      await this.context.audioWorklet.addModule(this.options.workletUrl || "/talk/static/talk-worklet.js");
      const source = this.context.createMediaStreamSource(this.microphone);
      const resampler = new AudioWorkletNode(this.context, "voxbridge-pcm16k", {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
        processorOptions: {targetRate: RATE, frameSamples: FRAME_SAMPLES}});
      // Pulled by the destination through a muted gain: a node nothing pulls may not be processed.
      const mute = this.context.createGain();
      mute.gain.value = 0;
      source.connect(resampler).connect(mute).connect(this.context.destination);
      this.player = new Player(this.context);
      this.resampler = resampler;
      this.socket = new WebSocket(this.url);
      this.socket.binaryType = "arraybuffer";
      this.socket.onopen = () => this.socket.send(JSON.stringify({type: "start", sampleRate: RATE}));
      this.socket.onmessage = (event) => this.receive(event.data);
      this.socket.onclose = (event) => this.closed(event.code, event.reason);
      resampler.port.onmessage = (event) => {
        if (this.socket.readyState === WebSocket.OPEN && !this.ended) this.socket.send(event.data);
      };
    }

    receive(data) {
      if (data instanceof ArrayBuffer) {
        this.player.play(data); // even after "ended": the goodbye came before it and is still playing
        return;
      }
      let message;
      try { message = JSON.parse(data); } catch (e) { return; }
      if (message.type === "clear") this.player.clear();
      if (message.type === "ended") this.stopMicrophone();
      this.onEvent(message);
    }

    hangUp() {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({type: "hangup"}));
      this.stopMicrophone();
      if (this.player) this.player.clear();
    }

    sendDigit(digit) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({type: "dtmf", digit: String(digit)}));
      }
    }

    stopMicrophone() {
      this.ended = true;
      if (this.microphone) this.microphone.getTracks().forEach((track) => track.stop());
      if (this.resampler) this.resampler.port.onmessage = null;
    }

    closed(code, reason) {
      this.stopMicrophone();
      this.onClose({code: code, reason: reason, text: CLOSE_REASONS[code] || `Closed (${code}).`});
    }
  }

  // ----- the page ----------------------------------------------------------------------------------------
  function mountPage(root) {
    const status = document.getElementById("status");
    const transcript = document.getElementById("transcript");
    const startButton = document.getElementById("start");
    const hangupButton = document.getElementById("hangup");
    const keyInput = document.getElementById("api-key");
    const query = new URLSearchParams(window.location.search);
    const given = query.get("call") && query.get("token");
    if (given) document.getElementById("key-row").classList.add("hidden");
    let call = null;
    let lastAgent = null;

    function say(text, state) {
      status.textContent = text;
      status.dataset.state = state;
    }

    function line(kind, text) {
      const item = document.createElement("li");
      item.className = kind;
      item.textContent = text; // never innerHTML: the words are the caller's and the agent's
      transcript.appendChild(item);
      return item;
    }

    function onEvent(message) {
      if (message.type === "ready") {
        say("Connected: talk to the agent.", "live");
        root.dataset.callId = message.call_id;
      } else if (message.type === "agent") {
        lastAgent = line("agent", message.text);
      } else if (message.type === "turn" && message.speaker === "caller") {
        line("caller", message.text);
      } else if (message.type === "turn" && message.speaker === "agent" && message.interrupted && lastAgent) {
        lastAgent.classList.add("interrupted");
      } else if (message.type === "ended") {
        say(`The call ended (${message.reason}).`, "ended");
      }
    }

    function onClose(info) {
      hangupButton.disabled = true;
      startButton.disabled = false;
      if (status.dataset.state !== "ended") say(info.text, info.code === 1000 ? "ended" : "error");
      root.dataset.closeCode = String(info.code);
    }

    async function websocketUrl() {
      if (given) {
        const base = root.dataset.wsBase.replace(/\/+$/, "");
        return `${base}/talk/${encodeURIComponent(query.get("call"))}?token=${encodeURIComponent(query.get("token"))}`;
      }
      const key = keyInput.value.trim();
      if (!key) throw new Error("Enter an API key of the agent's organization.");
      const response = await fetch(`/v1/agents/${encodeURIComponent(root.dataset.agentId)}/web-calls`, {
        method: "POST", headers: {Authorization: `Bearer ${key}`}, credentials: "omit"});
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      root.dataset.callId = body.call.id;
      return body.websocket_url;
    }

    startButton.addEventListener("click", async () => {
      startButton.disabled = true;
      transcript.replaceChildren();
      say("Connecting...", "connecting");
      try {
        call = new TalkCall(await websocketUrl(), {workletUrl: root.dataset.worklet, onEvent, onClose});
        await call.start();
        hangupButton.disabled = false;
      } catch (error) {
        if (call) call.stopMicrophone();
        say(`Could not start: ${error.message}`, "error");
        startButton.disabled = false;
      }
    });
    hangupButton.addEventListener("click", () => {
      if (call) call.hangUp();
      hangupButton.disabled = true;
    });
  }

  window.VoxBridgeTalk = {TalkCall: TalkCall, Player: Player, mountPage: mountPage, CLOSE_REASONS: CLOSE_REASONS};
  const root = document.getElementById("talk");
  if (root) mountPage(root);
})();
