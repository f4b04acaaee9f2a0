//! Real upstream projects (Debian source packages) built with both builders.
