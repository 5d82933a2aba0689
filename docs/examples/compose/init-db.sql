-- one state database per implementation (state_acme is created by the image itself)
CREATE DATABASE state_globex OWNER dossiersync;
