#!/usr/bin/env node
// Example Node.js client of the nas-latency gRPC server. It reads nothing but the .proto files (no generated
// code): @grpc/proto-loader builds the service from proto/nas_latency/v1/latency_service.proto at run time.
//
//   npm install
//   node client.js --address 127.0.0.1:50051 --space nasbench201 --signature sig.json --archs archs.txt \
//                  [--register NAME --token TOKEN] [--deadline-ms 5000]
//
// --signature: a JSON object {arch: latency_ms} of the device's measurements (e.g. on GetSignatureSet's archs).
// --archs: architecture ids to predict, one per line. Prints one JSON object with what the server answered.
// Errors print {"error": {"code": "...", "details": "..."}} and exit with status 1.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = process.env.NAS_LATENCY_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');

function parseArgs(argv) {
  const args = { address: '127.0.0.1:50051', space: 'nasbench201', deadlineMs: 30000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[key] = argv[i + 1];
  }
  args.deadlineMs = Number(args.deadlineMs);
  return args;
}

function loadService() {
  const definition = protoLoader.loadSync('nas_latency/v1/latency_service.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true, // field names exactly as in the .proto (latency_ms)
    longs: Number,
    enums: String, // enum values by name (KNOWN_DEVICE_KIND_BUNDLED)
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).nas_latency.v1;
}

// A unary call as a promise, with a deadline and optional bearer token.
function call(client, method, request, { deadlineMs, token }) {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  const deadline = new Date(Date.now() + deadlineMs);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const v1 = loadService();
  const client = new v1.LatencyService(args.address, grpc.credentials.createInsecure());
  const opts = { deadlineMs: args.deadlineMs, token: args.token };
  const out = {};
  try {
    out.spaces = (await call(client, 'ListSpaces', {}, opts)).spaces.map((s) => s.name);
    out.signature_archs = (await call(client, 'GetSignatureSet', { space: args.space, size: 5 }, opts)).archs;
    const measured = JSON.parse(fs.readFileSync(args.signature, 'utf8'));
    const signature = { archs: Object.keys(measured), latency_ms: Object.values(measured) };
    const archs = fs.readFileSync(args.archs, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l);
    let device = { signature };
    if (args.register) {
      const reply = await call(client, 'RegisterDevice',
        { name: args.register, space: args.space, measurements: signature, description: 'registered from Node.js' }, opts);
      out.registered = reply.device;
      device = { name: args.register };
    }
    const prediction = await call(client, 'Predict', { space: args.space, device, archs, include_uncertainty: true }, opts);
    out.latency_ms = prediction.latency_ms;
    out.latency_log_std = prediction.latency_log_std;
    out.model = prediction.model;
    out.signature_key = prediction.signature_key;
    out.nearest_devices = prediction.nearest_devices;
    process.stdout.write(JSON.stringify(out) + '\n');
  } catch (err) {
    const code = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) || String(err.code);
    process.stdout.write(JSON.stringify({ ...out, error: { code, details: err.details } }) + '\n');
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
