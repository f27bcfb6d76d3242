"""A stand-in third-party reward term, loaded through the entry-point group in a test."""


def plugin_term(ctx):
    return 1.0 if ctx.final_answer else 0.0
