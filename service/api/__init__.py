"""HTTP routes: thin handlers over the engine."""
