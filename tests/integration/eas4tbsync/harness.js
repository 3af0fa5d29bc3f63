/*
 * harness.js — runs the WBXML codec of Debian's webext-eas4tbsync package (Thunderbird's
 * ActiveSync add-on, content/includes/wbxmltools.js) in Node, as a second ActiveSync
 * client codec nobody here wrote. The add-on's file is loaded unmodified from
 * build-deps/eas4tbsync/ (scripts/deps.sh --test unpacks it) with the two globals it
 * expects from Thunderbird shimmed: ChromeUtils.import (for TbSync's dump and event log,
 * both recorded here) — nothing else of Thunderbird is touched by this file.
 *
 * Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
 *   {"op": "table"}
 *       -> {"ok": true, "namespaces": [...page names...], "codepages": [{tok: name}...]}
 *   {"op": "decode", "wbxml": BASE64}
 *       -> {"ok": true, "xml": the add-on's XML (convert2xml), "root_page": N,
 *           "warnings": [...]}   or {"ok": false, "error": ...}
 *       The add-on's XML has no namespace on elements of the root's page and
 *       xmlns='PageName' on the others; text is percent-encoded bytes (its own scheme:
 *       encodeURIComponent of the byte string).
 *   {"op": "encode", "tree": [page_name, tag_name, text_or_children]}
 *       children: a list of such triples; text: a string (sent as UTF-8)
 *       -> {"ok": true, "wbxml": BASE64}   built with the add-on's createWBXML writer
 *          (switchpage when the page changes, otag/atag/ctag as the add-on's commands do)
 *   Tag names are the add-on's (its table, see "table"); tests/integration/eas4tbsync/
 *   tbcodec.py wraps all this in MS-ASWBXML names.
 *
 * Usage: node harness.js [path to wbxmltools.js]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

const src = process.argv[2] || path.join(__dirname, '..', '..', '..', 'build-deps', 'eas4tbsync',
                                         'content', 'includes', 'wbxmltools.js');
const warnings = [];
const TbSync = {
    dump: (what, msg) => warnings.push(String(what) + ': ' + String(msg)),
    eventlog: {add: (level, a, msg) => warnings.push(String(level) + ': ' + String(msg))},
};
const ChromeUtils = {import: () => ({TbSync})};
// The add-on declares "var wbxmltools = {...}" at top level; evaluate it as a function
// body and hand the object back.
const wbxmltools = new Function('ChromeUtils', fs.readFileSync(src, 'utf8') +
                                '\nreturn wbxmltools;')(ChromeUtils);
if (!wbxmltools.codepages2.length)
    wbxmltools.buildCodepages2(); // the add-on does this at start-up

function decode(b64) {
    const bin = Buffer.from(b64, 'base64').toString('latin1');
    warnings.length = 0;
    const xml = wbxmltools.convert2xml(bin);
    if (xml === false)
        return {ok: false, error: 'convert2xml refused', warnings: warnings.slice()};
    const rootPage = bin.charCodeAt(4) === 0 ? bin.charCodeAt(5) : 0;
    return {ok: true, xml, root_page: rootPage, warnings: warnings.slice()};
}

function utf8bytes(s) {
    return Buffer.from(s, 'utf8').toString('latin1');
}

function encodeNode(w, node) {
    const [page, name, content] = node;
    if (w._codepage !== wbxmltools.namespaces.indexOf(page))
        w.switchpage(page);
    if (Array.isArray(content)) {
        w.otag(name);
        for (const c of content)
            encodeNode(w, c);
        w.ctag();
    } else {
        w.atag(name, utf8bytes(content || ''));
    }
}

function encode(tree) {
    const w = wbxmltools.createWBXML();
    encodeNode(w, tree);
    return {ok: true, wbxml: Buffer.from(w.getBytes(), 'latin1').toString('base64')};
}

const rl = readline.createInterface({input: process.stdin, terminal: false});
rl.on('line', (line) => {
    let out;
    try {
        const req = JSON.parse(line);
        if (req.op === 'table')
            out = {ok: true, namespaces: wbxmltools.namespaces, codepages: wbxmltools.codepages};
        else if (req.op === 'decode')
            out = decode(req.wbxml);
        else if (req.op === 'encode')
            out = encode(req.tree);
        else
            out = {ok: false, error: 'unknown op'};
    } catch (e) {
        out = {ok: false, error: String(e)};
    }
    process.stdout.write(JSON.stringify(out) + '\n');
});
