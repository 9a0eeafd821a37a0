// Placeholder replaced by the client build; exits 0 until client/ exists.
