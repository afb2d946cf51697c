// s3rver.js: starts the npm package s3rver (an S3-compatible server) on 127.0.0.1 port 0 for the
// S3 sink's integration test, creates the buckets named on the command line, prints
// "PORT <n>" once it listens, and stops on SIGTERM or when stdin closes.
// Usage: node tests/integration/s3rver.js DIR BUCKET...
'use strict';
const S3rver = require('s3rver');

const [dir, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: dir,
  configureBuckets: buckets.map((name) => ({ name })),
});

server.run().then(
  (addr) => {
    const port = addr && addr.port ? addr.port : server.httpServer.address().port;
    process.stdout.write(`PORT ${port}\n`);
  },
  (err) => {
    process.stderr.write(`s3rver: ${err.stack || err}\n`);
    process.exit(1);
  },
);
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
