// Sends one message with an attachment through Polaris's submission port with nodemailer
// (STARTTLS, AUTH PLAIN), as a mail program would. Prints "RESULT <json>".
// usage: node nodemailer_send.js PORT USER PASSWORD TO CAFILE
'use strict';
const fs = require('fs');
const nodemailer = require('nodemailer');

const [port, user, pass, to, cafile] = process.argv.slice(2);
const transport = nodemailer.createTransport({
  host: '127.0.0.1',
  port: Number(port),
  secure: false,
  requireTLS: true,
  auth: { user, pass },
  tls: { ca: fs.readFileSync(cafile), servername: 'localhost' },
});

transport.sendMail({
  from: user,
  to,
  subject: 'Report from nodemailer',
  text: 'Plain body with ünïcödé.',
  html: '<p>HTML body</p>',
  attachments: [{ filename: 'data.bin', content: Buffer.from([0, 1, 2, 250, 251, 252]) }],
}).then((info) => {
  console.log('RESULT ' + JSON.stringify({ messageId: info.messageId, response: info.response,
                                           accepted: info.accepted }));
}).catch((e) => {
  console.error(e);
  process.exit(1);
});
