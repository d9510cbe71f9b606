"""vic-machine: deploying, inspecting and removing VCHs. `deploy.py` holds the appliance deployment `vic-ref up` uses
(and `vic-machine create` will); `isos.py` the appliance and bootstrap images."""
