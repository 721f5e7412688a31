// BLAKE3 (32-byte hash, no key) in plain JavaScript, after the specification's reference
// implementation, and the search page's "find by a local file": the file is read in slices
// (File.slice), hashed here, and only its id is sent. No package of the Python world ships
// a browser BLAKE3, and the dashboard loads nothing from elsewhere, so it is written out.
"use strict";

(function () {
  const IV = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  const CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8;
  const BLOCK_LEN = 64, CHUNK_LEN = 1024;

  function g(s, a, b, c, d, x, y) {
    s[a] = (s[a] + s[b] + x) | 0;
    s[d] ^= s[a]; s[d] = (s[d] >>> 16) | (s[d] << 16);
    s[c] = (s[c] + s[d]) | 0;
    s[b] ^= s[c]; s[b] = (s[b] >>> 12) | (s[b] << 20);
    s[a] = (s[a] + s[b] + y) | 0;
    s[d] ^= s[a]; s[d] = (s[d] >>> 8) | (s[d] << 24);
    s[c] = (s[c] + s[d]) | 0;
    s[b] ^= s[c]; s[b] = (s[b] >>> 7) | (s[b] << 25);
  }

  // The compression function: 16 words of state from a chaining value and one block.
  function compress(cv, block, counter, blockLen, flags) {
    const s = new Uint32Array(16);
    s.set(cv, 0);
    s.set(IV.subarray(0, 4), 8);
    s[12] = counter >>> 0;
    s[13] = Math.floor(counter / 0x100000000);
    s[14] = blockLen;
    s[15] = flags;
    let m = Uint32Array.from(block);
    for (let round = 0; round < 7; round++) {
      g(s, 0, 4, 8, 12, m[0], m[1]);
      g(s, 1, 5, 9, 13, m[2], m[3]);
      g(s, 2, 6, 10, 14, m[4], m[5]);
      g(s, 3, 7, 11, 15, m[6], m[7]);
      g(s, 0, 5, 10, 15, m[8], m[9]);
      g(s, 1, 6, 11, 12, m[10], m[11]);
      g(s, 2, 7, 8, 13, m[12], m[13]);
      g(s, 3, 4, 9, 14, m[14], m[15]);
      if (round < 6) m = Uint32Array.from(PERMUTATION, (i) => m[i]);
    }
    for (let i = 0; i < 8; i++) {
      s[i] ^= s[i + 8];
      s[i + 8] ^= cv[i];
    }
    return s;
  }

  // Little-endian words of a 64-byte block, zero-padded.
  function words(bytes, start, length) {
    const block = new Uint32Array(16);
    for (let i = 0; i < length; i++) block[i >> 2] |= bytes[start + i] << (8 * (i & 3));
    return block;
  }

  // What a node outputs: its chaining value, or with ROOT the hash.
  class Output {
    constructor(cv, block, counter, blockLen, flags) {
      Object.assign(this, {cv, block, counter, blockLen, flags});
    }

    chainingValue() {
      return compress(this.cv, this.block, this.counter, this.blockLen, this.flags)
        .subarray(0, 8);
    }

    rootHex() {
      const s = compress(this.cv, this.block, 0, this.blockLen, this.flags | ROOT);
      let hex = "";
      for (let i = 0; i < 8; i++) {
        for (let k = 0; k < 4; k++) hex += ((s[i] >>> (8 * k)) & 0xff).toString(16).padStart(2, "0");
      }
      return hex;
    }
  }

  function parentOutput(left, right) {
    const block = new Uint32Array(16);
    block.set(left, 0);
    block.set(right, 8);
    return new Output(IV, block, 0, BLOCK_LEN, PARENT);
  }

  // One chunk of 1024 bytes (the last one may be shorter) being hashed block by block.
  class ChunkState {
    constructor(counter) {
      this.cv = IV;
      this.counter = counter;
      this.buffer = new Uint8Array(BLOCK_LEN);
      this.bufferLen = 0;
      this.blocks = 0;
    }

    length() {
      return this.blocks * BLOCK_LEN + this.bufferLen;
    }

    startFlag() {
      return this.blocks === 0 ? CHUNK_START : 0;
    }

    update(bytes, start, end) {
      while (start < end) {
        // A full block is compressed only once more bytes come: the last one is CHUNK_END.
        if (this.bufferLen === BLOCK_LEN) {
          this.cv = compress(this.cv, words(this.buffer, 0, BLOCK_LEN), this.counter,
                             BLOCK_LEN, this.startFlag()).subarray(0, 8);
          this.blocks += 1;
          this.buffer.fill(0);
          this.bufferLen = 0;
        }
        const take = Math.min(BLOCK_LEN - this.bufferLen, end - start);
        this.buffer.set(bytes.subarray(start, start + take), this.bufferLen);
        this.bufferLen += take;
        start += take;
      }
    }

    output() {
      return new Output(this.cv, words(this.buffer, 0, this.bufferLen), this.counter,
                        this.bufferLen, this.startFlag() | CHUNK_END);
    }
  }

  class Hasher {
    constructor() {
      this.chunk = new ChunkState(0);
      this.stack = [];  // chaining values of complete subtrees, largest first
    }

    update(bytes) {
      let start = 0;
      while (start < bytes.length) {
        // A full chunk is finished only once more bytes come: the last one may be the root.
        if (this.chunk.length() === CHUNK_LEN) {
          let cv = this.chunk.output().chainingValue();
          let total = this.chunk.counter + 1;
          while (total % 2 === 0) {
            cv = parentOutput(this.stack.pop(), cv).chainingValue();
            total /= 2;
          }
          this.stack.push(cv);
          this.chunk = new ChunkState(this.chunk.counter + 1);
        }
        const take = Math.min(CHUNK_LEN - this.chunk.length(), bytes.length - start);
        this.chunk.update(bytes, start, start + take);
        start += take;
      }
      return this;
    }

    hexdigest() {
      let output = this.chunk.output();
      for (let i = this.stack.length - 1; i >= 0; i--) {
        output = parentOutput(this.stack[i], output.chainingValue());
      }
      return output.rootHex();
    }
  }

  // The id of a File (or Blob), read slice by slice so that a large file is never whole in
  // memory; onProgress(bytesDone, bytesTotal) after each slice.
  async function hashFile(file, onProgress, sliceSize) {
    const step = sliceSize || 4 * 1024 * 1024;
    const hasher = new Hasher();
    for (let done = 0; done < file.size; done += step) {
      const slice = await file.slice(done, Math.min(done + step, file.size)).arrayBuffer();
      hasher.update(new Uint8Array(slice));
      if (onProgress) onProgress(Math.min(done + step, file.size), file.size);
    }
    return hasher.hexdigest();
  }

  window.amaBlake3 = {
    Hasher, hashFile,
    hashBytes: (bytes) => new Hasher().update(bytes).hexdigest(),
  };

  // The search page: a picked file is hashed here and its id searched for.
  function wire() {
    const box = document.querySelector(".by-file");
    if (!box) return;
    const picker = box.querySelector("input[type=file]");
    const progress = box.querySelector("progress");
    const status = box.querySelector(".status");
    const form = document.querySelector("form.search");
    box.hidden = false;
    picker.addEventListener("change", async () => {
      const file = picker.files[0];
      if (!file) return;
      progress.hidden = false;
      progress.value = 0;
      status.textContent = `Hashing ${file.name}…`;
      const id = await hashFile(file, (done, total) => {
        progress.value = total ? done / total : 1;
        status.textContent = `Hashing ${file.name}: ${Math.floor(100 * done / total)}%`;
      });
      status.textContent = `${file.name}: ${id}`;
      form.querySelector("input[name=q]").value = id;
      form.submit();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
