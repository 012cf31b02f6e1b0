"""The text <-> image study's book chapter (:mod:`.chapter`), generated from its result records."""
