"""The export bundle: its layout and MANIFEST, the one writer, the one verifier, deploy files, packaging, image."""
