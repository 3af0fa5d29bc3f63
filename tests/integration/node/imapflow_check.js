#!/usr/bin/env node
/*
 * Drives the imapflow IMAP client (a real client nobody here wrote) against a running
 * Polaris. Run by tests/integration/test_imap_clients.py:
 *
 *   node imapflow_check.js SCENARIO PORT USER PASSWORD
 *
 * SCENARIO:
 *   idle-cli    client A idles on INBOX; the polaris CLI appends a message (another
 *               process, so the store's change notification must cross processes);
 *               A must get the `exists` event.
 *   idle-imap   the same, but a second imapflow client APPENDs the message.
 *   condstore   a second session flags one message; FETCH CHANGEDSINCE the modseq A saw
 *               at SELECT returns exactly that message, with a higher MODSEQ.
 *   qresync     a second session expunges one message; A (QRESYNC enabled, idling) gets
 *               VANISHED for its UID, and a new session resyncing with SELECT (QRESYNC
 *               (uidvalidity modseq)) and UID FETCH CHANGEDSINCE .. VANISHED gets
 *               VANISHED (EARLIER) for it.
 *
 * The polaris CLI (for idle-cli) comes as a JSON argv in the environment variable
 * POLARIS_CLI, e.g. ["/path/polaris", "-c", "/tmp/x/polaris.ini"].
 *
 * Prints one line "RESULT {json}" and exits 0 when every check held; otherwise prints
 * "FAIL reason" and exits 1. Never runs longer than TIMEOUT_MS.
 */
'use strict';

const { ImapFlow } = require('imapflow');
const { spawn } = require('child_process');

const TIMEOUT_MS = 20000;
const [scenario, portArg, user, pass] = process.argv.slice(2);
const port = Number(portArg);

if (!scenario || !port || !user || !pass) {
    console.error('usage: node imapflow_check.js SCENARIO PORT USER PASSWORD');
    process.exit(2);
}

function fail(msg) {
    console.log('FAIL ' + msg);
    process.exit(1);
}

const watchdog = setTimeout(() => fail(`${scenario}: no result after ${TIMEOUT_MS} ms`), TIMEOUT_MS);
watchdog.unref();

const trace = [];
/* A pino-shaped logger that keeps the last lines (shown on failure) and lets a test wait
 * for a given debug message, e.g. the server's "+" to IDLE. */
function makeLogger(name, watchers) {
    const keep = level => obj => {
        const msg = (obj && obj.msg) || '';
        trace.push(`${name} ${level} ${msg}${obj && obj.err ? ' ' + obj.err.message : ''}`);
        if (trace.length > 60) trace.shift();
        for (const w of watchers || []) {
            if (msg.startsWith(w.prefix)) w.fn();
        }
    };
    return { trace: () => {}, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

function client(name, extra, watchers) {
    const c = new ImapFlow(Object.assign({
        host: '127.0.0.1',
        port,
        secure: false,
        doSTARTTLS: false, // plaintext on loopback; TLS is covered by the other clients
        auth: { user, pass },
        logger: makeLogger(name, watchers),
        clientInfo: { name: 'polaris-test-' + name },
        connectionTimeout: 5000,
        greetingTimeout: 5000,
        socketTimeout: 15000
    }, extra || {}));
    c.on('error', err => fail(`${name}: connection error: ${err.message}`));
    return c;
}

function message(subject) {
    return Buffer.from(
        'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\n' +
        `Subject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@example.com>\r\n` +
        'Date: Mon, 6 Jan 2025 10:00:00 +0000\r\n\r\nBody of ' + subject + '\r\n');
}

function withTimeout(promise, ms, what) {
    let t;
    return Promise.race([
        promise,
        new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); })
    ]).finally(() => clearTimeout(t));
}

function cliAppend(subject) {
    const argv = JSON.parse(process.env.POLARIS_CLI || 'null');
    if (!Array.isArray(argv) || !argv.length) fail('idle-cli needs POLARIS_CLI');
    return new Promise((resolve, reject) => {
        const p = spawn(argv[0], argv.slice(1).concat(['mail', 'append', user]), { stdio: ['pipe', 'pipe', 'pipe'] });
        let err = '';
        p.stderr.on('data', d => { err += d; });
        p.on('error', reject);
        p.on('close', code => (code === 0 ? resolve() : reject(new Error(`polaris mail append exited ${code}: ${err}`))));
        p.stdin.end(message(subject));
    });
}

/* Starts IDLE on `c` (auto-IDLE off) and resolves once the server has answered "+". */
function startIdle(c, started) {
    const done = c.idle();
    return { done, started: withTimeout(started, 5000, 'the server to accept IDLE') };
}

async function idle(via) {
    let onIdle;
    const idleStarted = new Promise(r => { onIdle = r; });
    const a = client('A', { disableAutoIdle: true }, [{ prefix: 'Initiated IDLE', fn: () => onIdle() }]);
    await a.connect();
    const box = await a.mailboxOpen('INBOX');
    const before = box.exists;

    let sent = 0;
    const existsEvent = new Promise(resolve => {
        a.on('exists', ev => resolve({ ev, at: process.hrtime.bigint() }));
    });
    const idl = startIdle(a, idleStarted);
    await idl.started;

    let b;
    if (via === 'imap') {
        b = client('B');
        await b.connect();
        sent = process.hrtime.bigint();
        const r = await b.append('INBOX', message('idle via imap'), ['\\Seen']);
        if (!r || !r.uid) fail(`APPEND returned no APPENDUID: ${JSON.stringify(r)}`);
    } else {
        sent = process.hrtime.bigint();
        await cliAppend('idle via cli');
    }
    const got = await withTimeout(existsEvent, 5000, 'the exists event during IDLE');
    const latencyMs = Number(got.at - sent) / 1e6;
    if (got.ev.count !== before + 1) fail(`exists count ${got.ev.count}, expected ${before + 1}`);
    if (got.ev.path !== 'INBOX') fail(`exists for ${got.ev.path}`);

    // The client leaves IDLE (DONE) and the session goes on working.
    const st = await a.status('INBOX', { messages: true });
    if (st.messages !== before + 1) fail(`STATUS after IDLE says ${st.messages} messages, expected ${before + 1}`);
    await idl.done;
    await a.logout();
    if (b) await b.logout();
    return { before, after: got.ev.count, latency_ms: Math.round(latencyMs * 10) / 10 };
}

async function condstore() {
    const a = client('A', { disableAutoIdle: true });
    await a.connect();
    if (!a.enabled.has('CONDSTORE')) fail(`CONDSTORE not enabled: ${[...a.enabled].join(' ')}`);
    const box = await a.mailboxOpen('INBOX');
    if (!box.highestModseq) fail('SELECT gave no HIGHESTMODSEQ');
    if (box.exists < 2) fail(`INBOX needs at least 2 messages, has ${box.exists}`);
    const modseq0 = box.highestModseq;

    // Nothing changed yet: CHANGEDSINCE the current modseq returns nothing.
    const none = [];
    for await (const m of a.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: modseq0 })) none.push(m.uid);
    if (none.length) fail(`FETCH CHANGEDSINCE ${modseq0} with no change returned UIDs ${none}`);

    // Another session flags the second message.
    const b = client('B', { disableAutoIdle: true });
    await b.connect();
    await b.mailboxOpen('INBOX');
    const all = [];
    for await (const m of b.fetch('1:*', { uid: true })) all.push(m.uid);
    const target = all[1];
    if (!(await b.messageFlagsAdd({ uid: target }, ['\\Flagged', '$Polaris'], { uid: true })))
        fail('STORE +FLAGS failed');
    await b.logout();

    // The answer may come with an unsolicited FETCH for the same message (the flag change
    // A has not been told about yet; RFC 7162 3.1.4.1 lets the server send it without UID),
    // which imapflow hands back among the results: judge by sequence number and UID.
    const changed = [];
    for await (const m of a.fetch('1:*', { uid: true, flags: true, modseq: true }, { uid: true, changedSince: modseq0 })) {
        changed.push({ seq: m.seq, uid: m.uid, modseq: m.modseq, flags: [...(m.flags || [])] });
    }
    const targetSeq = all.indexOf(target) + 1;
    const seqs = [...new Set(changed.map(m => m.seq))];
    const uidsSeen = [...new Set(changed.filter(m => m.uid).map(m => m.uid))];
    if (seqs.length !== 1 || seqs[0] !== targetSeq || uidsSeen.length !== 1 || uidsSeen[0] !== target)
        fail(`FETCH CHANGEDSINCE ${modseq0} returned ${JSON.stringify(changed, bigintJson)}, expected exactly UID ${target}`);
    const c = changed.find(m => m.uid === target);
    if (!(c.modseq > modseq0)) fail(`changed message has MODSEQ ${c.modseq}, not above ${modseq0}`);
    if (!c.flags.includes('\\Flagged') || !c.flags.includes('$Polaris')) fail(`flags ${c.flags}`);

    // Sequence-number FETCH with CHANGEDSINCE agrees.
    const bySeq = [];
    for await (const m of a.fetch('1:*', { flags: true }, { changedSince: modseq0 })) bySeq.push(m.seq);
    if (bySeq.length !== 1 || bySeq[0] !== targetSeq) fail(`FETCH (no UID) CHANGEDSINCE gave sequence numbers ${bySeq}, expected ${targetSeq}`);

    // A new SELECT reports a HIGHESTMODSEQ at least the changed message's.
    await a.mailboxClose();
    const again = await a.mailboxOpen('INBOX');
    if (!(again.highestModseq >= c.modseq)) fail(`HIGHESTMODSEQ ${again.highestModseq} after the change, below ${c.modseq}`);
    await a.logout();
    return { target, fetch_responses: changed.length, modseq_before: String(modseq0), modseq_after: String(c.modseq), flags: c.flags };
}

async function qresync() {
    let onIdle;
    const idleStarted = new Promise(r => { onIdle = r; });
    const a = client('A', { qresync: true, disableAutoIdle: true }, [{ prefix: 'Initiated IDLE', fn: () => onIdle() }]);
    await a.connect();
    if (!a.enabled.has('QRESYNC')) fail(`QRESYNC not enabled: ${[...a.enabled].join(' ')}`);
    const box = await a.mailboxOpen('INBOX');
    const exists0 = box.exists; // box is imapflow's live mailbox object: keep the number
    if (exists0 < 2) fail(`INBOX needs at least 2 messages, has ${exists0}`);
    const uidValidity = box.uidValidity;
    const modseq0 = box.highestModseq;
    const uids = [];
    for await (const m of a.fetch('1:*', { uid: true })) uids.push(m.uid);
    const victim = uids[0];

    const expunges = [];
    let onExpunge;
    const gotExpunge = new Promise(r => { onExpunge = r; });
    a.on('expunge', ev => { expunges.push(ev); onExpunge(); });
    const idl = startIdle(a, idleStarted);
    await idl.started;

    // Another session deletes the first message (STORE \Deleted + UID EXPUNGE).
    const b = client('B', { disableAutoIdle: true });
    await b.connect();
    await b.mailboxOpen('INBOX');
    if (!(await b.messageDelete({ uid: victim }, { uid: true }))) fail('EXPUNGE failed');
    await b.logout();

    await withTimeout(gotExpunge, 5000, 'VANISHED during IDLE');
    await new Promise(r => setTimeout(r, 100)); // anything else that came along
    const live = expunges.map(e => ({ uid: e.uid, seq: e.seq, vanished: e.vanished, earlier: e.earlier }));
    if (live.length !== 1 || !live[0].vanished || live[0].uid !== victim || live[0].earlier)
        fail(`during IDLE expected one VANISHED ${victim}, got ${JSON.stringify(live)} (with QRESYNC enabled the server must send VANISHED, not EXPUNGE: RFC 7162 3.2.10)`);
    await a.noop();
    await idl.done;
    const st = await a.status('INBOX', { messages: true });
    if (st.messages !== exists0 - 1) fail(`STATUS says ${st.messages} messages, expected ${exists0 - 1}`);
    await a.logout();

    // A client that was away resyncs: SELECT INBOX (QRESYNC (uidvalidity modseq0)).
    const c = client('C', { qresync: true, disableAutoIdle: true });
    const resync = [];
    c.on('expunge', ev => resync.push({ uid: ev.uid, vanished: ev.vanished, earlier: ev.earlier }));
    await c.connect();
    const box2 = await c.mailboxOpen('INBOX', { changedSince: modseq0, uidValidity });
    if (box2.uidValidity !== uidValidity) fail('UIDVALIDITY changed');
    if (!box2.qresync) fail('the server did not take SELECT (QRESYNC ...)');
    if (resync.length !== 1 || resync[0].uid !== victim || !resync[0].earlier)
        fail(`SELECT (QRESYNC (${uidValidity} ${modseq0})) expected VANISHED (EARLIER) ${victim}, got ${JSON.stringify(resync)}`);

    // And UID FETCH 1:* ... (CHANGEDSINCE modseq0 VANISHED) says the same.
    resync.length = 0;
    const fetched = [];
    for await (const m of c.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: modseq0 })) fetched.push(m.uid);
    if (resync.length !== 1 || resync[0].uid !== victim || !resync[0].earlier)
        fail(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq0} VANISHED) expected VANISHED (EARLIER) ${victim}, got ${JSON.stringify(resync)}`);
    if (fetched.includes(victim)) fail(`the expunged UID ${victim} was FETCHed`);
    await c.logout();
    return { victim, uid_validity: String(uidValidity), modseq_before: String(modseq0), modseq_after: String(box2.highestModseq) };
}

function bigintJson(_k, v) {
    return typeof v === 'bigint' ? String(v) : v;
}

const scenarios = {
    'idle-cli': () => idle('cli'),
    'idle-imap': () => idle('imap'),
    condstore,
    qresync
};

if (!scenarios[scenario]) fail(`unknown scenario ${scenario}`);
scenarios[scenario]()
    .then(result => {
        console.log('RESULT ' + JSON.stringify(result, bigintJson));
        process.exit(0);
    })
    .catch(err => {
        console.log(trace.join('\n'));
        fail(`${scenario}: ${err && (err.responseText || err.message)}${err && err.response ? ' [' + String(err.response).slice(0, 300) + ']' : ''}`);
    });
