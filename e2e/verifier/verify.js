#!/usr/bin/env node
// An independent Standard Webhooks verifier for sidehook's end-to-end
// test: the official "standardwebhooks" package, not sidehook's code.
//
// Input (standard input, or the file named by the one argument): one JSON
// document per line, {"secret": "whsec_...", "headers": {...}, "body": "..."},
// with body the request's exact body as a string. Output: one line per
// document, in order: "ok", or "fail: <reason>". Blank input lines are
// skipped. The exit status is 0 whenever every document got its line.
"use strict";

const fs = require("fs");
const { Webhook } = require("standardwebhooks");

function check(line) {
  let doc;
  try {
    doc = JSON.parse(line);
  } catch (err) {
    return `fail: input is not JSON: ${err.message}`;
  }
  if (typeof doc.secret !== "string" || typeof doc.body !== "string" ||
      doc.headers === null || typeof doc.headers !== "object") {
    return "fail: input needs secret (string), headers (object) and body (string)";
  }
  try {
    // jsonParse: false only stops the package from parsing the body
    // after the signature matched, so form and text bodies verify too.
    new Webhook(doc.secret).verify(doc.body, doc.headers, { jsonParse: false });
    return "ok";
  } catch (err) {
    return `fail: ${err.message}`;
  }
}

const input = fs.readFileSync(process.argv.length > 2 ? process.argv[2] : 0, "utf8");
const out = [];
for (const line of input.split("\n")) {
  if (line.trim() !== "") {
    out.push(check(line));
  }
}
process.stdout.write(out.map((l) => l + "\n").join(""));
