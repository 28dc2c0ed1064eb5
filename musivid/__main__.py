from .cli import main

# guarded: worker processes started with "spawn" (musivid/workers.py) import this module again
if __name__ == "__main__":
    main()
