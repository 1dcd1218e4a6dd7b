from odqa.cli.main import main

main()
