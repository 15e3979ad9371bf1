"""ROME and r-ROME (Meng et al. 2022a; Gupta et al. 2024). Modules: one step each."""
