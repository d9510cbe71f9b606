"""vic-machine: deploying, inspecting and removing VCHs. `deploy.py` holds the appliance deployment (`vic-ref up` and
`vic-machine create` both use it), `isos.py` the appliance and bootstrap images; the `vic-machine` command is
`cli.py` (flags, output) over `commands.py` (what each command does), with `certs.py` (TLS material), `flags.py`
(flag values), `output.py` (terminal and plain output) and `version.py` (vic-machine's build)."""
