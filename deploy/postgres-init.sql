-- Run once by the postgres image when its data volume is first created
-- (docker-entrypoint-initdb.d), as POSTGRES_USER (cairn).
-- One database per Cairn instance: instances never share tables.
CREATE DATABASE stirling OWNER cairn;
CREATE DATABASE falkirk OWNER cairn;
CREATE DATABASE national OWNER cairn;
