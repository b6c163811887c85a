"""`python -m jaxdl` is the `jaxdl` command."""

from jaxdl.cli import command

if __name__ == "__main__":
    command()
