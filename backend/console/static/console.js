/* Photos of a hazard, several at once, each with its own progress bar.
   Up to data-direct-limit bytes a photo goes in one request to the console; a larger one takes the presigned upload:
   its SHA-256 is computed here in slices (no need for a secure context), the console opens the upload, the bytes go
   straight to the object store, and the console checks size and SHA-256 of what landed. */
(function () {
  "use strict";
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];

  function Sha256() {
    this.h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    this.buf = new Uint8Array(64); this.used = 0; this.total = 0; this.w = new Int32Array(64);
  }
  Sha256.prototype.block = function (b, o) {
    var w = this.w, h = this.h, i, t1, t2, a, bb, c, d, e, f, g, hh, s0, s1;
    for (i = 0; i < 16; i++) w[i] = (b[o + 4 * i] << 24) | (b[o + 4 * i + 1] << 16) | (b[o + 4 * i + 2] << 8) | b[o + 4 * i + 3];
    for (i = 16; i < 64; i++) {
      s0 = ((w[i - 15] >>> 7) | (w[i - 15] << 25)) ^ ((w[i - 15] >>> 18) | (w[i - 15] << 14)) ^ (w[i - 15] >>> 3);
      s1 = ((w[i - 2] >>> 17) | (w[i - 2] << 15)) ^ ((w[i - 2] >>> 19) | (w[i - 2] << 13)) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    a = h[0]; bb = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
      s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      t2 = (s0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  };
  Sha256.prototype.update = function (data) {
    var i = 0;
    this.total += data.length;
    if (this.used) {
      while (this.used < 64 && i < data.length) this.buf[this.used++] = data[i++];
      if (this.used < 64) return;
      this.block(this.buf, 0); this.used = 0;
    }
    for (; i + 64 <= data.length; i += 64) this.block(data, i);
    while (i < data.length) this.buf[this.used++] = data[i++];
  };
  Sha256.prototype.hex = function () {
    var bits = this.total * 8, pad = new Uint8Array(((this.used < 56) ? 56 : 120) - this.used + 8), i, out = "";
    pad[0] = 0x80;
    for (i = 0; i < 8; i++) pad[pad.length - 1 - i] = Math.floor(bits / Math.pow(2, 8 * i)) & 0xff;
    this.update(pad);
    for (i = 0; i < 8; i++) out += ("00000000" + (this.h[i] >>> 0).toString(16)).slice(-8);
    return out;
  };

  function hashFile(file, onProgress) {
    var sha = new Sha256(), slice = 4 * 1024 * 1024, offset = 0;
    return new Promise(function (resolve, reject) {
      function next() {
        if (offset >= file.size) { resolve(sha.hex()); return; }
        file.slice(offset, offset + slice).arrayBuffer().then(function (buffer) {
          sha.update(new Uint8Array(buffer)); offset += buffer.byteLength; onProgress(offset / file.size); next();
        }, reject);
      }
      next();
    });
  }

  var csrf = document.body.getAttribute("data-csrf");

  function send(method, url, body, headers, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress) xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText || "null"); } catch (ignored) { answer = null; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
        else reject(new Error((answer && answer.error) || "上传失败（" + xhr.status + "）"));
      };
      xhr.onerror = function () { reject(new Error("网络中断，上传失败")); };
      xhr.send(body);
    });
  }

  function direct(box, file, bar) {
    var form = new FormData();
    form.append("kind", "photo");
    form.append("file", file, file.name);
    return send("POST", box.dataset.photosUrl, form, { "X-CSRF-Token": csrf, "Accept": "application/json" }, bar);
  }

  function presigned(box, file, bar) {
    return hashFile(file, function (p) { bar(p * 0.2); }).then(function (sha256) {
      var body = JSON.stringify({ kind: "photo", content_type: file.type || "image/jpeg", size: file.size, sha256: sha256 });
      return send("POST", box.dataset.uploadsUrl, body, { "X-CSRF-Token": csrf, "Content-Type": "application/json", "Accept": "application/json" });
    }).then(function (started) {
      return send("PUT", started.upload_url, file, {}, function (p) { bar(0.2 + p * 0.75); }).then(function () {
        return send("POST", box.dataset.completeUrl.replace("{id}", started.evidence_id), null, { "X-CSRF-Token": csrf, "Accept": "application/json" });
      });
    });
  }

  function chosen(photo) {
    var list = document.getElementById("chosen-photos"), none = document.getElementById("no-photos");
    if (none) none.remove();
    var li = document.createElement("li"), label = document.createElement("label"), box = document.createElement("input"), img = document.createElement("img");
    box.type = "checkbox"; box.name = "evidence_ids"; box.value = photo.id; box.checked = true;
    img.src = photo.thumbnail_url; img.alt = "整改照片（新上传）"; img.width = 120; img.height = 90;
    label.appendChild(box); label.appendChild(document.createTextNode(" ")); label.appendChild(img);
    li.appendChild(label); list.appendChild(li);
  }

  document.querySelectorAll(".upload").forEach(function (box) {
    var input = box.querySelector("input[type=file]"), list = box.querySelector(".progress-list");
    input.addEventListener("change", function () {
      var limit = window.consoleDirectLimit || Number(box.dataset.directLimit);
      Array.prototype.forEach.call(input.files, function (file) {
        var li = document.createElement("li"), name = document.createElement("span"), progress = document.createElement("progress");
        name.textContent = file.name + " "; progress.max = 1; progress.value = 0;
        progress.setAttribute("aria-label", file.name + " 上传进度");
        li.appendChild(name); li.appendChild(progress); list.appendChild(li);
        var bar = function (p) { progress.value = p; };
        (file.size <= limit ? direct(box, file, bar) : presigned(box, file, bar)).then(function (photo) {
          progress.value = 1; li.classList.add("done"); name.textContent = file.name + " 已上传 "; chosen(photo);
        }, function (error) {
          li.classList.add("failed"); name.textContent = file.name + "：" + error.message + " ";
        });
      });
      input.value = "";
    });
  });
})();
