//! Conformance cases: every case built with the stock builder and with ours.
