"""The built-in transports' specs: one small module each, named in `transports.registry`.

A spec module holds what config, routes, doctor and status need (the step's options class, what the
step needs from the rest of the file, how it is probed) and nothing that delivers: that is in the
module its `impl` names, imported only when a message goes that way.
"""
