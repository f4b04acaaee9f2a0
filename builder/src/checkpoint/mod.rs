//! Checkpoint storage: manifests, content-addressed blobs, snapshots and restores.
