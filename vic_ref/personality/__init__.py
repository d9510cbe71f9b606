"""The Docker Engine API personality of a VCH: `server.make_app(portlayer, vch_config)` builds the aiohttp app."""
