"""vic_ref: the reference VIC engine (personality, port layer, imagec, tether, vic-machine)."""
