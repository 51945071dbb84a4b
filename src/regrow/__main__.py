from regrow.cli import app

app()
