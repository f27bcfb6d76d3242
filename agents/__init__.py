"""Training integrations: the OpenRLHF agent file and the stage recipes of the Med-R3 curriculum."""
