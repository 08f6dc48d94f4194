// The microphone at the device's rate (44.1 or 48 kHz, sometimes 16) -> 16 kHz 16-bit PCM in 20 ms frames.
// Runs on the audio rendering thread: each process() gets 128 samples; finished frames are posted to the page,
// which sends them over the WebSocket. `sampleRate` is the AudioWorkletGlobalScope's (the context's rate).
"use strict";

class PcmResampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const settings = (options && options.processorOptions) || {};
    this.outRate = settings.targetRate || 16000;
    this.frameSamples = settings.frameSamples || 320;
    this.step = sampleRate / this.outRate; // input samples per output sample
    this.position = 0; // where the next output sample falls, in input samples from this block's start
    this.previous = 0; // the last input sample of the block before (position -1)
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.lowPass = this.step > 1 ? biquadLowPass(sampleRate, 0.45 * this.outRate) : null;
    this.filtered = new Float32Array(128);
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0 && input[0].length > 0) {
      this.consume(this.lowPass ? this.filter(input[0]) : input[0]);
    }
    return true; // keep running while the page holds the node
  }

  // Downsampling folds everything above the new Nyquist frequency back into the voice band: cut it first.
  filter(samples) {
    if (this.filtered.length < samples.length) this.filtered = new Float32Array(samples.length);
    const f = this.lowPass;
    for (let i = 0; i < samples.length; i++) {
      const x = samples[i];
      const y = f.b0 * x + f.b1 * f.x1 + f.b2 * f.x2 - f.a1 * f.y1 - f.a2 * f.y2;
      f.x2 = f.x1; f.x1 = x; f.y2 = f.y1; f.y1 = y;
      this.filtered[i] = y;
    }
    return this.filtered.subarray(0, samples.length);
  }

  // Linear interpolation between neighbouring input samples; the position carries over block boundaries.
  consume(samples) {
    const last = samples.length - 1;
    let t = this.position;
    while (t < last) {
      const i = Math.floor(t);
      const a = i < 0 ? this.previous : samples[i];
      const b = samples[i + 1];
      this.push(a + (b - a) * (t - i));
      t += this.step;
    }
    this.position = t - samples.length;
    this.previous = samples[last];
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === this.frameSamples) {
      const out = this.frame.buffer;
      this.port.postMessage(out, [out]); // handed over, not copied
      this.frame = new Int16Array(this.frameSamples);
      this.filled = 0;
    }
  }
}

// RBJ audio-EQ-cookbook low-pass, Q = 1/sqrt(2).
function biquadLowPass(rate, cutoff) {
  const w = 2 * Math.PI * cutoff / rate;
  const alpha = Math.sin(w) / (2 * Math.SQRT1_2);
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  return {
    b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
    a1: -2 * cos / a0, a2: (1 - alpha) / a0, x1: 0, x2: 0, y1: 0, y2: 0,
  };
}

registerProcessor("voxbridge-pcm16k", PcmResampler);
