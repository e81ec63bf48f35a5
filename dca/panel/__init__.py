"""What every page of the Streamlit panel shares: settings, services, the SIMULATED banner."""
