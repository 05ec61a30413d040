from anshim.config.cli import main

main()
