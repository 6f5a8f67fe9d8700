//! plugctl
