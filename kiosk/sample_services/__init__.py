"""Three sample council online services, shipped so the whole loop runs without outside systems."""
