//! Real third-party clients against the simulator.
