"""The resident relay: one long-lived process that every command can run inside.

`clawrelay serve` pays the start-up once (imports, parsed routes, an authenticated connection per
gateway, ssh connections, the journal's folder) and drains the outbox as `outbox flush --watch`
does. A command that talks to the outside first asks the relay, over a Unix socket in the state
dir, to run it; the client side (`client`) is standard library only, so a forwarded command
starts in the time Python itself takes. With no relay answering, the command runs in its own
process, exactly as before. Layout:

- `address`: where the socket is, for a state dir (standard library only);
- `protocol`: the frames on the socket: a length, then one JSON object (bounded);
- `client`: decide whether a command line may be forwarded, forward it, relay Ctrl-C;
- `context`: what a command run inside the relay sees as its own process (stdio, environment,
  working folder, event loop), per request;
- `server`: the relay itself.
"""
