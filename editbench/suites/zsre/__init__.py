"""zsRE question form vs completion form: do edits transfer between formats?"""
