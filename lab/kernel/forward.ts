// One TCP connection from a test VM to a port on the host's loopback: qemu's
// guestfwd starts this per connection with the connection on stdin/stdout.
import { connect } from 'node:net';

const [host = '127.0.0.1', port = ''] = process.argv.slice(2);
const socket = connect({ host, port: Number(port) });
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(1));
process.stdin.on('end', () => socket.end());
